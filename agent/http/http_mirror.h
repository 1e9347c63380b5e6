// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// HTTPRoute RequestMirror (issue 21 point 3): a copy of a routed request goes to the mirror
// backend, fire and forget, as Envoy's shadow writer does. The copy carries the request as
// forwarded to the primary backend (header modifier applied) with "-shadow" appended to the
// host of its authority (http::shadowAuthority); its response is read and thrown away.
//
// The primary request never waits for it: the copy is handed over once the request is read whole
// and lives on the worker's event loop on its own connection (the mirror Service's own cluster:
// load balancing, circuit breaking and pooled upstream connections, upstream_pool.h), so a
// mirror that is slow, down or refusing changes nothing for the client. A copy that cannot be
// sent at once is dropped, never queued: no mirror endpoint, the mirror's circuit breaker full,
// or kMaxMirrorsInFlight copies already in flight on the agent.
//
// Memory: only bodies the routed path buffers anyway (up to kMaxMirrorBodyBytes) are mirrored;
// a request with a bigger body is not (its body streams to the primary backend). So the agent
// holds at most kMaxMirrorsInFlight x (kMaxMirrorBodyBytes + a request head) for mirroring.
//
// Counted per route (route_state.h): ferry_route_mirrors_total (sent),
// ferry_route_mirror_errors_total (sent, no whole response), ferry_route_mirrors_dropped_total
// {reason=body_too_large|overload|no_healthy_upstream}. The mirror backend's agent reports the
// copy like any request (reporter="destination", destination_service = the mirror Service), as
// Istio does; the source reports no istio_requests_total for it (the app sent one request).

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "agent/pods/local_pods.h"
#include "agent/state/route_state.h"
#include "agent/worker_context.h"

namespace ferry::agent {

// Bodies up to this size are mirrored (the routed path's retry buffer, http_outbound.h).
inline constexpr size_t kMaxMirrorBodyBytes = 64 * 1024;
// Copies in flight at once, agent-wide.
inline constexpr int64_t kMaxMirrorsInFlight = 256;
// How long a copy may take when its rule sets no request timeout (Envoy's default route
// timeout); then its connection is closed.
inline constexpr absl::Duration kMirrorDefaultTimeout = absl::Seconds(15);

struct MirrorCopy {
  std::shared_ptr<BackendCluster> cluster;  // the mirror Service's, for its port
  std::string cluster_id;                   // "ns/name:port" (upstream pool key prefix)
  std::shared_ptr<const LocalPod> source;
  std::shared_ptr<const WorkloadState> state;
  std::string source_ip;
  std::string request;  // head with the shadow authority, then the body as received
  bool head_request = false;
  absl::Duration timeout = kMirrorDefaultTimeout;
  routing::RouteStats* stats = nullptr;
};

// Sends `copy` now or drops it (counted either way); returns at once.
void sendMirror(WorkerContext& ctx, MirrorCopy copy);

// Counts a copy chosen but not sent: `field` is one of RouteStats::mirror_dropped_*.
void countMirrorDrop(routing::RouteStats* stats, std::atomic<uint64_t> routing::RouteStats::*field);

}  // namespace ferry::agent
