// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// `ferryctl check`: would the destination pod's policies let the source pod in, and why.
// Evaluated with the same engine and explain API the agent uses, on the manifests' policies.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/inventory.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {

struct CheckArgs {
  model::ObjectKey source, destination;
  std::optional<std::string> method, path;  // both or neither: an HTTP request, else L4
  std::optional<uint16_t> port;             // unset: the target port of the Service in front
  std::optional<std::string> host;          // unset: that Service's hostname
  std::vector<std::pair<std::string, std::string>> headers;
  std::string trust_domain = "cluster.local";
};

struct CheckReport {
  struct Rule {
    int rule = 0;
    bool matched = false;
    bool skipped_at_l4 = false;
    std::string why;
  };
  struct Policy {
    std::string name;    // ns/name
    std::string action;  // ALLOW, DENY, AUDIT
    std::vector<Rule> rules;
  };
  std::string source, source_principal, source_ip;
  std::string destination, destination_ip;
  uint16_t port = 0;
  bool http = false;
  std::string method, host, path;
  bool allowed = false;
  std::string reason;      // deny_matched, no_allow_policy, allow_matched, no_allow_matched
  std::string summary;     // the engine's one-line decision
  std::string decided_by;  // ns/name of the deciding policy, empty when none
  int decided_by_rule = -1;
  std::vector<std::string> audits;    // "ns/name rule N"
  std::vector<Policy> policies;       // every policy that selects the destination
  std::vector<std::string> warnings;  // policies that failed to compile (they fail closed)
};

// Fails (NotFound) for a pod the manifests do not have, and (InvalidArgument) when the port
// cannot be told from the Services and --port was not given.
absl::StatusOr<CheckReport> runCheck(const Inventory& inventory, const CheckArgs& args);

std::string checkTable(const CheckReport& report);
nlohmann::json checkJson(const CheckReport& report);

}  // namespace ferry::cli
