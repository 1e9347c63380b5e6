// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The in-pod listeners. For each enrolled pod every worker owns one socket per port (15001,
// 15006, 15008), created inside the pod's network namespace and joined into a SO_REUSEPORT
// group, so the kernel spreads a pod's connections over the workers and the connection stays
// on the worker that accepted it.

#include <memory>
#include <vector>

#include "agent/drain/handover.h"
#include "agent/io/event_loop.h"
#include "agent/io/overload.h"
#include "agent/io/sockets.h"
#include "agent/pods/local_pods.h"
#include "agent/worker_context.h"
#include "agent/workers.h"

namespace ferry::agent {

enum class ListenerKind { kOutbound, kInboundPlain, kHbone };
uint16_t portOf(ListenerKind kind);

// Out of descriptors or memory (overload.h), a listener stops watching its socket for a pause
// that doubles from 50 ms to 1 s (the kernel keeps queueing connections meanwhile), counts the
// cause and logs it at most once a second; with the worker's fd reserve (--fd-reserve) it first
// accepts one pending connection and closes it, so clients see a refusal instead of a wait.
class PodListener : public EventHandler {
 public:
  PodListener(WorkerContext& ctx, std::shared_ptr<const LocalPod> pod, ListenerKind kind, int fd);
  ~PodListener() override;  // unregisters and closes
  void onEvents(uint32_t events) override;
  int fd() const { return fd_; }
  // Starts watching a listener created while the worker was not accepting.
  void resume();

 private:
  void dispatch(int fd);
  // Handles an accept that failed for want of resources; false when the batch should stop.
  bool onOverload(OverloadCause cause, int err);
  void pause();

  WorkerContext& ctx_;
  std::shared_ptr<const LocalPod> pod_;
  ListenerKind kind_;
  int fd_;
  AcceptBackoff backoff_;
  EventLoop::TimerId resume_timer_ = 0;  // set while paused
  bool watched_ = false;                 // in the event loop
};

// Opens a pod's listeners for every worker (on the calling thread) and hands each worker its
// own. On failure nothing is left open.
class PodListeners {
 public:
  // The pod's listening sockets by hand-over name (pod/<uid>/<port>); they stay the workers'.
  using Named = std::vector<std::pair<std::string, int>>;
  // Listeners a previous agent handed over (`inherited`, may be null) are used first, the rest
  // are opened (and join the same SO_REUSEPORT group).
  static absl::StatusOr<Named> start(std::shared_ptr<const LocalPod> pod,
                                     const std::vector<WorkerContext*>& workers, Capture& capture,
                                     const PodSockets& sockets,
                                     InheritedListeners* inherited = nullptr);
  // Lets every worker accept (the agent took over and is ready).
  static void resumeAll(const std::vector<WorkerContext*>& workers);
  // Closes the pod's listeners on every worker (asynchronously, on each worker's thread). The
  // pod's capture stays: with no listener its connections are refused (fail closed), until a
  // new listener takes over or the pod is deleted (Capture::removePod).
  static void stop(const LocalPod& pod, const std::vector<WorkerContext*>& workers);
};

// GOAWAY on every inbound HBONE connection of the worker: streams in flight finish, peers open
// new ones to the agent that took over (hbone_server.cc).
void drainInboundTunnels(WorkerContext& ctx);

}  // namespace ferry::agent
