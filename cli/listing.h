// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// `ferryctl workloads|services|policies|ratelimits`: what the manifests hold, as tables or JSON.

#include <string>

#include "cli/inventory.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {

std::string workloadsTable(const Inventory& inv);
nlohmann::json workloadsJson(const Inventory& inv);
std::string servicesTable(const Inventory& inv);
nlohmann::json servicesJson(const Inventory& inv);
std::string policiesTable(const Inventory& inv);
nlohmann::json policiesJson(const Inventory& inv);
std::string rateLimitsTable(const Inventory& inv);
nlohmann::json rateLimitsJson(const Inventory& inv);
// RequestAuthentications: what each selects, its issuers and where their keys come from.
std::string requestAuthenticationsTable(const Inventory& inv);
nlohmann::json requestAuthenticationsJson(const Inventory& inv);

}  // namespace ferry::cli
