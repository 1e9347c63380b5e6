// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Keep-alive upstream connections of the HTTP-aware outbound path (http_outbound.h), per worker
// and per (source pod, endpoint). A connection is an UpstreamLink (upstream_link.h): the HBONE
// stream itself to a pod on another node, opened with the source pod's identity on the same pool
// and CONNECT as a captured L4 connection; an in-process pipe into the destination's inbound HTTP
// relay on this node; otherwise a socketpair whose other end goes through forwardToDestination
// (a TCP port on this node, passthrough). Either way routing adds no second
// implementation of connect, mTLS, policy or telemetry, and a connection is reused while both
// ends keep it alive.
//
// An idle connection still reports to the pool so that a close (or any unexpected byte) from the
// backend drops it at once, instead of failing the next request put on it; idle ones close
// after --pool-idle-timeout-ms.

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "agent/http/upstream_link.h"
#include "agent/io/event_loop.h"
#include "agent/pods/local_pods.h"
#include "agent/state/workload_state.h"

namespace ferry::agent {

struct WorkerContext;

struct UpstreamConn {
  std::unique_ptr<UpstreamLink> link;
  std::string key;
  uint64_t responses = 0;  // responses completed on it; 0 = never used (fresh)
};

class UpstreamPool {
 public:
  explicit UpstreamPool(WorkerContext& ctx) : ctx_(ctx) {}
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // `cluster`: the backend's "ns/name:port" (a pod behind two Services is two keys: each
  // Service's limits count its own connections). `socket`: for socket links only.
  static std::string keyOf(const std::string& cluster, const LocalPod& source,
                           const std::string& ip, uint16_t port, bool socket = false);

  // An idle connection for `key`, no longer registered with the loop; nullopt when none.
  std::optional<UpstreamConn> take(const std::string& key);
  // A connection that finished a response cleanly and may carry another (not registered).
  void put(UpstreamConn conn);
  // A new connection from `source` to `destination` under `key` (connecting in the background:
  // a failure shows as EOF or a reset on the link before any response byte). `socket`: a
  // socket link whatever the destination (a WebSocket route's, whose key says so: keyOf()).
  // The link reports to nobody until bound.
  absl::StatusOr<UpstreamConn> open(const std::string& key,
                                    const std::shared_ptr<const LocalPod>& source,
                                    const WorkloadState& state, const Destination& destination,
                                    const std::string& source_ip, bool socket = false);
  // An idle connection for `key` when there is one, else a new one (open()).
  absl::StatusOr<UpstreamConn> acquire(const std::string& key,
                                       const std::shared_ptr<const LocalPod>& source,
                                       const WorkloadState& state, const Destination& destination,
                                       const std::string& source_ip, bool socket = false);
  // Closes a link its holder is done with (reset unless it ended cleanly), from inside its own
  // callback too.
  static void discard(EventLoop& loop, std::unique_ptr<UpstreamLink> link, bool reset);
  size_t idleCount() const;

 private:
  struct Idle;
  void drop(Idle* idle);

  WorkerContext& ctx_;
  std::map<std::string, std::list<Idle*>> idle_;
};

// The worker's pool, created on first use.
UpstreamPool& upstreamPool(WorkerContext& ctx);

}  // namespace ferry::agent
