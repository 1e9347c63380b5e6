// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The per-request decision of the routed outbound path (issue 20 point 2): from a parsed request
// head, the route table and a random source, what happens to the request, with no socket, timer
// or connection in sight:
//   the request target's rules (upgrades other than WebSocket and CONNECT 501, bad target or
//   no authority 400) ->
//   match a rule (none: 404) -> fault injection (abort: that status; delay: returned) ->
//   RequestRedirect (a local answer with a Location) -> a backend Service by weight (none: 500)
//   and its cluster (none: 503) -> the rule's then the backend's filters (header edits both
//   ways, URLRewrite of path and Host) -> the forwarded head, and the RequestMirror copy's head.
// The caller (http_outbound.cc) counts the route's counters from the decision and feeds the
// forward part to the upstream attempts (upstream_attempts.h).

#include <memory>
#include <optional>
#include <string>

#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"
#include "agent/http/http_mirror.h"
#include "agent/http/upstream_attempts.h"
#include "agent/state/route_state.h"
#include "http/http1_parser.h"
#include "http/request_view.h"
#include "model/model.h"
#include "trace/span.h"
#include "trace/traceparent.h"

namespace ferry::agent {

// An answer made here instead of forwarding.
struct LocalAnswer {
  int status = 0;  // 0: none, the request is forwarded
  std::string body;
  std::string location;    // RequestRedirect: answered as a redirect to this
  const char* flags = "";  // Envoy's response flags (NR, FI, UH, DPE...)
  bool close = false;      // the client connection closes after it (a request we cannot parse)
};

struct RouteDecision {
  // The request's authority in normal form (the raw Host when refused before it was known).
  std::string authority;
  // Tracing, when spans are exported: the traceparent received and our client span.
  std::string incoming_traceparent;
  std::optional<trace::TraceContext> trace;

  LocalAnswer local;
  const routing::CompiledRule* rule = nullptr;  // valid while the view is held
  routing::RouteStats* stats = nullptr;         // the matched route's counters
  bool fault_injected = false;                  // an abort or a delay was chosen
  bool websocket = false;  // a WebSocket handshake: a 101 turns the connection into a tunnel

  // Forwarding (local.status == 0).
  std::optional<absl::Duration> delay;      // fault delay before the first try
  std::shared_ptr<BackendCluster> cluster;  // the chosen backend's
  std::string cluster_id;                   // "ns/name:port", the upstream pool's key prefix
  model::ObjectKey backend_service;
  std::string upstream_cluster;  // Istio's "outbound|<port>||<service host>"
  std::string head;              // the forwarded request head
  http::HeaderEdits response_edits;
  // RequestMirror: the copy without its body, source or stats (the caller's); unset when the
  // rule mirrors nothing this time. `mirror_unavailable`: chosen but its Service has no cluster.
  std::optional<MirrorCopy> mirror;
  bool mirror_unavailable = false;

  bool forwarded() const { return local.status == 0; }
  // Counts the request, and the fault chosen for it, on the matched route (none: nothing).
  void countRequest() const;
  // What the tries need of the matched rule (forwarded requests only); `method` as for
  // AttemptPolicy.
  AttemptPolicy attemptPolicy(std::string_view method) const;
  // Gives the RequestMirror copy its sender and the route's counters; a mirror chosen with no
  // cluster is counted as dropped.
  void addressMirror(std::shared_ptr<const LocalPod> source,
                     std::shared_ptr<const WorkloadState> state, std::string source_ip);
  // The copy, once the request was read whole, with `body`; a body that was streamed (too big to
  // keep) is not mirrored, counted as dropped.
  std::optional<MirrorCopy> takeMirror(std::string_view body, bool streamed);
};

// The routed Service (its key) and the port the request came to.
struct RoutedService {
  model::ObjectKey service;
  uint16_t port = 0;
};

// Decides for one request. `sampler`: the span exporter's, null when spans are not exported
// (then the destination's agent starts the trace and no context is made here).
RouteDecision decideRoute(const http::MessageHead& head, const RoutedService& to,
                          const RoutingView& view, absl::BitGenRef rng,
                          const trace::Sampler* sampler);

}  // namespace ferry::agent
