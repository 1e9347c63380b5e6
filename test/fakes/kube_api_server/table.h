// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Server-side printing: the meta.k8s.io/v1 Table kubectl asks for (Accept: ...;as=Table) with
// the columns kube-apiserver prints for the built-in kinds Ferry uses and a CRD's
// additionalPrinterColumns for custom kinds (Name and Age for the rest).

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "kube/resource.h"

namespace ferry::fakes {

// True when the Accept header asks for a Table.
bool wantsTable(const std::string& accept);

// `objects` as a Table; rows carry the object ("Object") or its metadata (default, as
// includeObject=Metadata). `crd_version` is the CRD's spec.versions entry or null.
nlohmann::json asTable(const kube::Resource& r, const std::vector<nlohmann::json>& objects,
                       const nlohmann::json& crd_version, bool include_object,
                       const std::string& resource_version);

}  // namespace ferry::fakes
