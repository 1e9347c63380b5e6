// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The JSON form of PodInfo, shared by the wire protocol and the journal (internal header).

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "enroll/protocol.h"

namespace ferry::enroll {

nlohmann::json podToJson(const PodInfo& pod);
absl::StatusOr<PodInfo> podFromJson(const nlohmann::json& object);

}  // namespace ferry::enroll
