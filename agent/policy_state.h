// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Connection-level (L4) authorization and the inbound mTLS mode, behind a small interface so the
// full L4 + L7 engine (userspace/policy) can replace the built-in evaluator without touching the
// proxy paths.
//
// Built-in semantics follow Istio's AuthorizationPolicy at L4 (as ztunnel does): DENY wins, then
// no ALLOW policy selecting the workload allows, then a matching ALLOW allows, else deny. A rule
// that needs HTTP attributes (methods, paths, hosts, request principals, header conditions)
// cannot be decided on a TCP connection: in a DENY policy it matches (fail closed), in an ALLOW
// policy it does not.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "model/model.h"

namespace ferry::agent {

struct ConnectionAttributes {
  // Peer identity when authenticated (mTLS or same-node), as "<td>/ns/<ns>/sa/<sa>" (Istio's
  // principal form, the SPIFFE ID without "spiffe://"); empty for plaintext.
  std::string principal;
  std::string source_namespace;  // empty for plaintext
  std::string source_ip;
  std::string destination_ip;
  uint16_t destination_port = 0;
  // The port carries HTTP and every request on it is authorized again (l7_authorizer.h): a rule
  // needing HTTP attributes neither refuses nor admits the connection here, it decides per
  // request.
  bool http = false;
};

struct Decision {
  bool allowed = true;
  std::string reason;  // the policy that decided, for logs
  std::string policy;  // "ns/name" of the deciding policy; empty when none decided
  int rule = -1;       // index of the deciding rule in it
};

class Authorizer {
 public:
  virtual ~Authorizer() = default;
  virtual Decision authorize(const model::NodeSnapshot& snapshot,
                             const model::Workload& destination,
                             const ConnectionAttributes& attrs) const = 0;
};

// The built-in L4 evaluator described above.
class L4Authorizer : public Authorizer {
 public:
  explicit L4Authorizer(std::string root_namespace = "ferry-system")
      : root_namespace_(std::move(root_namespace)) {}
  Decision authorize(const model::NodeSnapshot& snapshot, const model::Workload& destination,
                     const ConnectionAttributes& attrs) const override;

 private:
  std::string root_namespace_;
};

// Inbound mTLS mode for a workload and port: workload-selecting PeerAuthentication, else the
// namespace's, else the root namespace's, else PERMISSIVE (Istio's default).
model::MtlsMode mtlsModeFor(const model::NodeSnapshot& snapshot, const model::Workload& workload,
                            uint16_t port, const std::string& root_namespace = "ferry-system");

// Istio's string match: exact, "prefix*", "*suffix" or "*".
bool istioMatch(const std::string& pattern, const std::string& value);

}  // namespace ferry::agent
