// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The agent's authorization state: the snapshot's AuthorizationPolicies compiled by the one
// engine (userspace/policy) once per state change and shared, read-only, by every worker, plus
// the inbound mTLS mode. Every connection-level decision (inbound plaintext, HBONE streams,
// same-node connections, revocation) and every HTTP request (l7_authorizer.h) is made here.
//
// Connection-level semantics are the engine's (policy/engine.h): on a TCP port an ALLOW rule
// naming an HTTP-only field never matches and a DENY rule keeps its L4 parts; on an HTTP port
// the connection is admitted when some request could be allowed and each request is decided
// again. A peer without a verified identity (plaintext) matches no identity value, `*` included.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/stats.h"
#include "jwt/authenticator.h"
#include "model/model.h"
#include "policy/engine.h"

namespace ferry::agent {

struct ConnectionAttributes {
  // Peer identity when authenticated (mTLS or same-node), as "<td>/ns/<ns>/sa/<sa>" (Istio's
  // principal form, the SPIFFE ID without "spiffe://"); empty for plaintext.
  std::string principal;
  std::string source_namespace;  // empty for plaintext (for reports; policy reads the principal)
  std::string source_ip;
  std::string destination_ip;
  uint16_t destination_port = 0;
  // The port carries HTTP and every request on it is authorized again (l7_authorizer.h): a rule
  // needing HTTP attributes neither refuses nor admits the connection here, it decides per
  // request.
  bool http = false;

  bool operator==(const ConnectionAttributes&) const = default;
};

struct Decision {
  bool allowed = true;
  std::string reason;  // the engine's explanation, for logs
  std::string policy;  // "ns/name" of the deciding policy; empty when none decided
  int rule = -1;       // index of the deciding rule in it
};

// One WorkloadState's compiled policies. Immutable once built; safe to share across threads.
class PolicyState {
 public:
  // Compiles `snapshot.policies` and the rule sets of the snapshot's local workloads.
  explicit PolicyState(const model::NodeSnapshot& snapshot);

  // The connection-level decision for `attrs` to `destination`. Dry-run policies are logged and
  // counted in `stats` (policy_dry_run_allowed / policy_dry_run_denied) when given.
  Decision authorize(const model::Workload& destination, const ConnectionAttributes& attrs,
                     Stats* stats = nullptr) const;
  // One request or connection decided by the engine for `destination`.
  policy::Decision evaluate(const model::Workload& destination,
                            const policy::Request& request) const;

  // "ns/name: reason" of each refused policy in force as a deny-all stand-in (from the
  // controller, or failing to compile here).
  const std::vector<std::string>& failingClosed() const { return failing_closed_; }

  // The RequestAuthentication (JWT) rules for `destination`, keys parsed once per state; null
  // when none apply.
  std::shared_ptr<const jwt::Authenticator> authenticator(const model::Workload& destination) const;
  // "issuer: reason" of each JWT rule in force without usable keys (its tokens are refused).
  const std::vector<std::string>& jwtKeyErrors() const { return jwt_key_errors_; }

 private:
  std::shared_ptr<const policy::PolicySnapshot> snapshot_;
  std::map<std::string, policy::WorkloadPolicies> by_uid_;  // local workloads
  std::map<std::string, std::shared_ptr<const jwt::Authenticator>> authn_by_uid_;
  std::vector<model::RequestAuthentication> request_authentications_;
  std::vector<std::string> jwt_key_errors_;
  std::vector<std::string> failing_closed_;
};

// The engine's request for a connection's attributes. Views into `attrs` and `principal`, which
// must outlive the request.
policy::Request connectionRequest(const ConnectionAttributes& attrs, std::string& principal);

// Counts (and logs) the dry-run part of a decision, if any. `what` names the connection or
// request in the log line.
void recordDryRun(const policy::Decision& d, const std::string& what, Stats* stats);

// Logs each refused policy that starts failing closed from `before` to `after` (a warning naming
// it and why) and each that stops (fixed or deleted).
void logFailingClosed(const PolicyState& before, const PolicyState& after);

// Inbound mTLS mode for a workload and port: workload-selecting PeerAuthentication, else the
// namespace's, else the root namespace's, else PERMISSIVE (Istio's default).
model::MtlsMode mtlsModeFor(const model::NodeSnapshot& snapshot, const model::Workload& workload,
                            uint16_t port, const std::string& root_namespace = "ferry-system");

}  // namespace ferry::agent
