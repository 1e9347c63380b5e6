// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// ferryctl's view of a running agent, through its admin API (127.0.0.1:15000 by default):
// `status` and `certs`, and the agent's own state for `workloads|services|policies|check`.

#include <string>

#include "absl/status/statusor.h"
#include "cli/inventory.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {

inline constexpr char kDefaultAdmin[] = "127.0.0.1:15000";

// GET http://<address><path> (HTTP/1.0, 5 s timeouts): the body of a 200 answer. `what` names
// the flag the address came from in errors; `unreachable` is the error when nothing listens.
absl::StatusOr<std::string> httpGetBody(const std::string& address, const std::string& path,
                                        absl::string_view what, absl::string_view unreachable);

// GET http://<address><path> and parse the JSON body. `address` is "host:port" (IPv4).
absl::StatusOr<nlohmann::json> adminGet(const std::string& address, const std::string& path);

// The workloads, services and policies of an agent's /config_dump.
absl::StatusOr<Inventory> inventoryFromConfigDump(const nlohmann::json& dump);

// `ferryctl status`: readiness, configuration, pods, certificates and key counters.
nlohmann::json statusJson(const nlohmann::json& dump, const nlohmann::json& stats);
std::string statusTable(const nlohmann::json& status);
// `ferryctl certs`: one row per identity of an enrolled pod.
nlohmann::json certsJson(const nlohmann::json& dump);
std::string certsTable(const nlohmann::json& certs);

}  // namespace ferry::cli
