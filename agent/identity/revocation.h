// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Open connections that a policy change can take away. Each worker keeps the connections it
// admitted together with the attributes they were authorized with; when the WorkloadState (and
// so the policy set) changes, every one is authorized again against the new snapshot and those
// now denied are closed (counted as policy_revoked, and logged, only when the connection was
// still open: an HBONE stream may have finished before its entry is dropped). HTTP connections are
// covered as well: an L4-decidable deny closes them, and their requests are each authorized against
// the current snapshot anyway (l7_authorizer.h).
//
// The check runs from a timer on the worker's own loop (kRecheckInterval) that compares the
// state pointer, so no cross-thread call reaches a connection: a change is seen within that
// interval, well under the one second the policy API promises.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/state/policy_state.h"
#include "agent/telemetry/telemetry.h"
#include "agent/worker_context.h"
#include "model/model.h"

namespace ferry::agent {

class Revocations {
 public:
  static constexpr std::chrono::milliseconds kRecheckInterval{200};
  using Id = uint64_t;

  explicit Revocations(WorkerContext& ctx) : ctx_(ctx) {}
  ~Revocations();
  Revocations(const Revocations&) = delete;
  Revocations& operator=(const Revocations&) = delete;

  // The worker's registry (created on first use).
  static Revocations& of(WorkerContext& ctx);

  // `close` must end the connection (and lead to remove(id), or not: a closed entry is dropped
  // here first) and return whether it was still open (false: it had already finished, nothing
  // was revoked). `destination` identifies the workload by uid; `fallback` stands in while the
  // state does not know it (enrolled before the controller told us).
  using Close = std::function<bool()>;
  Id add(const model::Workload& destination, ConnectionAttributes attrs, Close close);
  void remove(Id id) { entries_.erase(id); }
  size_t size() const { return entries_.size(); }

  // Authorizes every entry against the current state if it changed since the last check.
  void recheck();

 private:
  struct Entry {
    std::string uid;
    model::ObjectKey key;  // for a workload the state does not (yet) know
    ConnectionAttributes attrs;
    Close close;
  };
  void arm();

  WorkerContext& ctx_;
  std::map<Id, Entry> entries_;
  Id next_id_ = 1;
  std::shared_ptr<const WorkloadState> checked_;
  EventLoop::TimerId timer_ = 0;
};

// relayCounted (inbound.h) for a connection `attrs` admitted to `destination`: closed if a
// later policy no longer allows it.
void relayRevocable(WorkerContext& ctx, int downstream, int upstream,
                    std::atomic<int64_t>* connect_failures, const model::Workload& destination,
                    ConnectionAttributes attrs, std::vector<ConnectionTelemetry> telemetry);

}  // namespace ferry::agent
