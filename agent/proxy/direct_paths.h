// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The same-node direct path (bpf/README.md, "Same-node direct path"). When the agent has
// admitted an app's connection to a pod of this node, on a port that carries L4 only, with no
// connection rate limit, it offers the pair (source pod address -> destination pod
// address:port) here. A pair the same-node question (outbound.h: sameNodeCall,
// authorizeDelivery) still allows goes into the kernel's ferry_direct map: from then on the
// pair's connects are neither redirected nor steered, and the kernel carries the bytes between
// the two app sockets, as with no mesh.
//
// What the agent keeps doing for them:
//  - telemetry: sockops reports each direct connection's open and its close with the payload
//    both ways from the client socket's own counters; each becomes the same two Istio TCP
//    reports (source and destination) the relayed path makes;
//  - revocation: before a new workload state is published to the workers (revise()), and
//    whenever the local pods change, every pair (and every live connection's pair) is asked
//    the same question again. A pair no longer eligible is removed (its next connects go
//    through the agent again); a pair the policy now denies also has its live connections
//    destroyed (sock_diag SOCK_DESTROY in the client's namespace: the app sees ECONNABORTED,
//    its peer a reset). So no connect after a policy change is published goes direct on the
//    old answer.
//
// Pairs change under one mutex (offer from any worker, revise from the state thread, the pods
// check on the loop); the events are read on one worker's loop.

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "agent/io/event_loop.h"
#include "agent/io/sockets.h"
#include "agent/pods/local_pods.h"
#include "agent/state/workload_state.h"
#include "agent/stats.h"
#include "agent/telemetry/telemetry.h"
#include "bpf/capture.h"
#include "net/socket_address.h"

namespace ferry::agent {

class RateLimits;

class DirectPaths {
 public:
  static constexpr std::chrono::milliseconds kRecheckInterval{200};

  struct Parts {
    bpf::Capture& capture;
    EventLoop& loop;
    const WorkloadStateHolder& workloads;
    const LocalPodsHolder& pods;
    const RateLimits* rate_limits;  // may be null
    Telemetry& telemetry;
    const PodSockets& sockets;
    Stats& stats;  // the loop's worker's
  };
  // Reads the kernel's events from now on; pairs a previous agent left are kept and asked
  // again at the first recheck.
  static absl::StatusOr<std::unique_ptr<DirectPaths>> start(Parts parts);
  // Removes every pair (the agent runs with --same-node-direct=off): live direct connections
  // are left to finish.
  static void clearPairs(bpf::Capture& capture);
  ~DirectPaths();

  // Any thread: the agent admitted `pair` as a same-node L4 connection.
  void offer(const bpf::DirectPair& pair);
  // The state thread, before it publishes `next`: removes or cuts what `next` no longer allows.
  void revise(const WorkloadState& next);
  // Any thread: `client` -> `server` is a direct connection the kernel knows.
  bool isDirectConnection(const SocketAddress& client, const SocketAddress& server) const;

  // The verdict for one pair against the current state (public for tests).
  struct Verdict {
    bool direct = false;  // may go direct
    bool denied = false;  // the destination's policy denies it: live connections are cut
    std::vector<ConnectionInfo> reports;  // when the pods and workloads are known
  };
  Verdict judge(const bpf::DirectPair& pair, const WorkloadState& state,
                const LocalPodTable& pods) const;

 private:
  explicit DirectPaths(Parts parts);
  class EventsHandler;
  void arm();
  void recheckPods();
  void reviseLocked(const WorkloadState& state, const LocalPodTable& pods);
  void onEvent(const bpf::DirectEvent& event);
  // The pair's two reports under the current state, judged once per state and pods (loop only).
  const std::vector<ConnectionInfo>& reportsFor(const bpf::DirectPair& pair);
  void cut(const bpf::DirectConnection& connection, const LocalPodTable& pods);

  Parts p_;
  std::unique_ptr<bpf::DirectEvents> events_;
  std::unique_ptr<EventsHandler> handler_;
  EventLoop::TimerId timer_ = 0;
  std::mutex mu_;                                                   // the pairs in the kernel
  std::shared_ptr<const LocalPodTable> checked_pods_;               // loop only
  std::map<uint64_t, std::vector<ConnectionTelemetry>> open_;       // by client socket cookie
  std::map<bpf::DirectPair, std::vector<ConnectionInfo>> reports_;  // for reports_state_/pods_
  std::shared_ptr<const WorkloadState> reports_state_;
  std::shared_ptr<const LocalPodTable> reports_pods_;
};

}  // namespace ferry::agent
