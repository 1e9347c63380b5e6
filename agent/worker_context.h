// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// What a worker's data-path code can reach. `Shared` is agent-wide and read-mostly (snapshots
// behind atomic shared_ptrs); everything else in WorkerContext belongs to one worker thread.
//
// Only the connection paths take it: proxy/ (listeners, outbound, inbound, the HBONE client,
// pool, server and tunnels) and the HTTP paths in http/ (inbound filters, routed outbound,
// mirror, upstream pool). Each of them uses many of its parts at once (the loop, stats, RNG,
// pools, config, state, telemetry, sockets) and hands connections on to the next stage. Rooms
// that need one or two things are given exactly those instead: identity/ (Revocations: the loop,
// the state, the stats), telemetry/ (the state and Telemetry), pods/ (EnrollmentTargets), the
// per-request pieces of http/ (makeL7Authorizer, reportExchange, route decisions), state/,
// admin/ and io/ (PodSockets) never see it.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/drain/stream_state.h"
#include "agent/io/event_loop.h"
#include "agent/io/overload.h"
#include "agent/pods/capture.h"
#include "agent/pods/local_pods.h"
#include "agent/state/policy_state.h"
#include "agent/state/workload_state.h"
#include "agent/stats.h"
#include "net/ip.h"

namespace ferry::agent {

class CertificateStore;
class PodSockets;
class PodListener;
class TunnelConnection;
class HbonePool;
class HeaderWaitQueue;
class Telemetry;
class Revocations;
class UpstreamPool;
class H2UpstreamPool;
class RoutingState;
class RateLimits;
class ResumeRegistry;
class StreamBridge;
class DirectPaths;

struct Shared {
  const Config* config = nullptr;
  WorkloadStateHolder* workloads = nullptr;
  Capture* capture = nullptr;
  // Sockets inside pods' namespaces (agent/io/sockets.h); never null once the agent runs.
  const PodSockets* sockets = nullptr;
  LocalPodsHolder* pods = nullptr;
  CertificateStore* certs = nullptr;
  Telemetry* telemetry =
      nullptr;  // metrics and access log (agent/telemetry/telemetry.h); never null
  RoutingState* routing = nullptr;  // HTTPRoutes and backend clusters (route_state.h); may be null
  RateLimits* rate_limits = nullptr;  // RateLimitPolicy buckets (rate_limits.h); may be null
  // The same-node direct path (direct_paths.h); null when off or without eBPF capture.
  DirectPaths* direct = nullptr;
  // The cluster's pod ranges (--pod-cidrs), parsed once: a captured connection to an address in
  // them that no snapshot names is refused rather than sent in clear.
  std::vector<net::Cidr> pod_ranges;
  // The cluster's Service ranges (--service-cidrs): a ClusterIP no snapshot names is refused the
  // same way (the controller sends every Service, mesh or not, to a node with a mesh pod).
  std::vector<net::Cidr> service_ranges;
  // HTTP connections waiting for a request head, over every worker (--max-http-awaiting-headers
  // caps it; http_waiting.h).
  std::atomic<int64_t> http_awaiting_headers{0};
  // Mirrored copies of routed requests in flight, over every worker (http_mirror.h caps it).
  std::atomic<int64_t> mirrors_in_flight{0};
  // Inbound HBONE connections open (with or without streams), over every worker: a draining
  // agent leaves only once its peers have moved theirs to the next agent.
  std::atomic<int64_t> inbound_tunnels_open{0};
  // Resumable streams this agent serves as the destination, by token (docs/upgrades.md); null
  // with --stream-resume=off.
  ResumeRegistry* resumes = nullptr;
  // True while a predecessor may still hand streams over: a resume for a token not here yet is
  // told to retry instead of "gone".
  std::atomic<bool> expecting_streams{false};
  // True once a successor takes streams over: a stream suspended from then on waits for it
  // instead of being resumed here.
  std::atomic<bool> handing_streams_over{false};
  // Client streams between their suspension and their resume, over every worker: a draining
  // agent leaves only once a successor has them.
  std::atomic<int64_t> streams_in_resume{0};
};

struct WorkerContext {
  WorkerContext(int i, EventLoop& l, Shared& s);
  ~WorkerContext();

  int index;
  EventLoop& loop;
  Shared& shared;
  Stats stats;
  std::mt19937 rng;
  std::map<std::string, std::vector<std::unique_ptr<PodListener>>> listeners;  // by pod uid
  // False while a predecessor still serves the node (agent/drain/handover.h): listeners are opened
  // or taken over but not watched until the agent is ready. Worker thread only after start.
  bool accepting = true;
  // Inbound HBONE connections of this worker (hbone_server.cc), told to drain on hand-over.
  std::set<TunnelConnection*> inbound_tunnels;
  // Streams of this worker a successor takes over on upgrade (docs/upgrades.md): bridges of
  // resumable streams, bridges of resumes waiting for their answer, and client streams waiting
  // to ask again (by a key of their own, with their backoff timer; 0: none, a successor's).
  std::set<StreamBridge*> resumable_bridges;
  std::set<StreamBridge*> resuming_bridges;
  struct ResumeWait {
    HandedStream stream;
    std::chrono::steady_clock::time_point deadline;
    int attempt = 0;
    EventLoop::TimerId timer = 0;
  };
  std::map<uint64_t, ResumeWait> resume_waits;
  uint64_t next_resume_wait = 1;
  std::unique_ptr<HbonePool> pool;
  std::unique_ptr<Revocations> revocations;      // created on first use (revocation.h)
  std::unique_ptr<UpstreamPool> upstreams;       // created on first use (upstream_pool.h)
  std::unique_ptr<H2UpstreamPool> h2_upstreams;  // created on first use (h2_upstream.h)
  // --fd-reserve: a descriptor this worker's listeners free to refuse connections when the
  // process is out of them (overload.h); not held otherwise.
  FdReserve fd_reserve;
  // HTTP connections of this worker waiting for a request head, oldest first (http_waiting.h).
  std::unique_ptr<HeaderWaitQueue> header_waits;
};

}  // namespace ferry::agent
