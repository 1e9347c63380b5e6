// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Kubernetes' protobuf request bodies, which kubectl's typed clients send for built-in kinds
// (kubectl create namespace/configmap/secret/serviceaccount): the "k8s\0" envelope around a
// runtime.Unknown, decoded into the JSON object the server would have read. Only those kinds
// and the ObjectMeta fields a create carries (name, generateName, namespace, labels,
// annotations, finalizers); anything else is Unimplemented (the server answers 415).

#include <nlohmann/json.hpp>

#include <string>

#include "absl/status/statusor.h"

namespace ferry::fakes {

absl::StatusOr<nlohmann::json> decodeProtobufObject(const std::string& body);

}  // namespace ferry::fakes
