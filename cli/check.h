// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// `ferryctl check`: would the destination pod's policies let the source pod in, and why.
// Decided the way the destination's agent decides (the same engine, policy/engine.h, and the same
// port protocol selection, policy/protocol.h): on a TCP port once per connection; on an HTTP port
// the connection first, then the request when METHOD PATH are given.

#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
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
  // The request's verified JWT, as the agent would have it after RequestAuthentication: its
  // principal "<iss>/<sub>" (set: the request carries a valid token), and claims by name
  // ("groups", nested "outer][inner", several values for a list), audiences and presenter.
  std::optional<std::string> request_principal;
  std::vector<std::pair<std::string, std::string>> claims;
  std::vector<std::string> audiences;
  std::string presenter;
  std::string trust_domain = "cluster.local";
  // The source connects without mutual TLS (no verified identity), as a pod outside the mesh
  // does; implied when the source pod is not in the mesh.
  bool plaintext = false;
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
    bool dry_run = false;  // istio.io/dry-run: reported, not enforced
  };
  std::string source, source_principal, source_ip;  // principal empty: plaintext
  std::string destination, destination_ip;
  uint16_t port = 0;
  bool http_port = false;  // a Service names the port HTTP: requests are decided one by one
  bool http = false;       // the answer is for an HTTP request (else for the connection)
  std::string method, host, path;
  std::string request_principal;  // empty: no JWT
  bool allowed = false;
  std::string reason;      // deny_matched, no_allow_policy, allow_matched, no_allow_matched
  std::string summary;     // the engine's one-line decision
  std::string decided_by;  // ns/name of the deciding policy, empty when none
  int decided_by_rule = -1;
  std::optional<bool> dry_run_allowed;  // what dry-run policies would decide, when any apply
  std::vector<std::string> audits;      // "ns/name rule N"
  std::vector<Policy> policies;         // every policy that selects the destination
  std::vector<std::string> warnings;    // refused policies failing closed, ignored METHOD PATH
};

// Fails (NotFound) for a pod the manifests do not have, and (InvalidArgument) when the port
// cannot be told from the Services and --port was not given.
absl::StatusOr<CheckReport> runCheck(const Inventory& inventory, const CheckArgs& args);

std::string checkTable(const CheckReport& report);
nlohmann::json checkJson(const CheckReport& report);

// One query of `ferryctl check --batch`, a JSON object with the command line's parts:
//   {"source": "ns/pod", "destination": "ns/pod", "method": "GET", "path": "/x",
//    "port": 8080, "host": "h", "headers": {"name": "value"}, "plaintext": true,
//    "trust_domain": "cluster.local", "request_principal": "iss/sub",
//    "claims": {"groups": ["a", "b"], "outer][inner": "v"}}
// Only source and destination are required; method and path come together or not at all.
absl::StatusOr<CheckArgs> checkArgsFromJson(const nlohmann::json& query);

// Answers each JSON line of `in` with one line on `out`: checkJson() of the report, or
// {"error": "..."} for a line that is not a query or names what the inventory lacks. Returns how
// many lines were errors.
int checkBatch(const Inventory& inventory, std::istream& in, std::ostream& out);

}  // namespace ferry::cli
