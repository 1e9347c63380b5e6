// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// L7 (HTTP) authorization on the destination's agent: which inbound ports carry HTTP, and the
// per-request authorizer the HTTP filters call, backed by userspace/policy.
//
// Every request is evaluated against the WorkloadState current when it arrives, so a policy
// change reaches the next request on an open connection. The policies are compiled once per
// state (WorkloadState::policies(), shared by every worker; no locks on the request path).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "agent/pods/local_pods.h"
#include "agent/state/workload_state.h"
#include "agent/stats.h"
#include "hbone/baggage.h"
#include "http/request_view.h"
#include "jwt/authenticator.h"
#include "model/model.h"
#include "policy/request.h"

namespace ferry::agent {

class RateLimits;

// policy::isHttpPort (policy/protocol.h) over the snapshot's Services.
bool isHttpPort(const model::NodeSnapshot& snapshot, const model::Workload& workload,
                uint16_t port);

// What the engine is shown of a request the HTTP filters parsed: method, normalized authority
// and path, headers; CONNECT and non-WebSocket upgrades as tunnels (policy/request.h: allowed
// only by an ALLOW rule naming their method), a WebSocket upgrade as the GET it starts as.
// Views into `view`.
policy::HttpRequest toPolicyRequest(const http::RequestView& view);

// Request authentication (RequestAuthentication, JWT) of one request: false when its token is
// refused, with `out` set to the 401 Envoy sends (body and WWW-Authenticate); otherwise `out.edits`
// gets what is removed from and added to the forwarded request, and `token` the verified JWT (if
// any) that the policy engine is then shown.
bool authenticateRequest(const jwt::Authenticator& authn, const http::RequestView& view,
                         const policy::HttpRequest& http, jwt::Outcome& token,
                         http::AuthzDecision& out);

// The verified facts of one inbound connection that every request on it shares.
struct InboundPeer {
  std::string principal;  // SPIFFE ID "spiffe://td/ns/x/sa/y"; empty for plaintext
  std::string source_ip;
  std::string destination_ip;
  uint16_t destination_port = 0;
  // HBONE: the source's baggage, already checked against the peer certificate.
  std::optional<hbone::Baggage> baggage;
};

// The authorizer for requests on one inbound connection to `pod`: each request against the
// state `workloads` holds when it arrives, then (allowed) the pod's rate limits (`limits`, may be
// null). It counts decisions in the worker's `stats` (http_requests_allowed / _denied / ...).
http::Authorizer makeL7Authorizer(const WorkloadStateHolder& workloads, RateLimits* limits,
                                  Stats& stats, std::shared_ptr<const LocalPod> pod,
                                  InboundPeer peer);

}  // namespace ferry::agent
