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

#include "agent/io/event_loop.h"
#include "agent/state/interned.h"
#include "agent/state/policy_state.h"
#include "agent/state/workload_state.h"
#include "agent/stats.h"
#include "model/model.h"

namespace ferry::agent {

class Revocations {
 public:
  static constexpr std::chrono::milliseconds kRecheckInterval{200};
  using Id = uint64_t;

  // Rechecks on `loop`'s timer against `workloads`, counting revoked connections in `stats`.
  Revocations(EventLoop& loop, const WorkloadStateHolder& workloads, Stats& stats)
      : loop_(loop), workloads_(workloads), stats_(stats) {}
  ~Revocations();
  Revocations(const Revocations&) = delete;
  Revocations& operator=(const Revocations&) = delete;

  // `close` must end the connection (and lead to remove(id), or not: a closed entry is dropped
  // here first) and return whether it was still open (false: it had already finished, nothing
  // was revoked). `destination` identifies the workload by uid; `fallback` stands in while the
  // state does not know it (enrolled before the controller told us).
  using Close = std::function<bool()>;
  Id add(const model::Workload& destination, ConnectionAttributes attrs, Close close);
  void remove(Id id) { entries_.erase(id); }
  size_t size() const { return entries_.size(); }
  // Distinct subjects (destination and attributes) the entries share (for tests).
  size_t sharedSubjects() const { return subjects_.inUse(); }

  // Authorizes every entry against the current state if it changed since the last check.
  void recheck();

 private:
  // What an entry is authorized again as; connections with the same one share it.
  struct Subject {
    std::string uid;
    model::ObjectKey key;  // for a workload the state does not (yet) know
    ConnectionAttributes attrs;

    // Every field (a field added to ConnectionAttributes too): entries judged alike.
    bool operator==(const Subject&) const = default;
  };
  struct SubjectHash {
    size_t operator()(const Subject& s) const;
  };
  struct Entry {
    std::shared_ptr<const Subject> subject;
    Close close;
  };
  void arm();

  EventLoop& loop_;
  const WorkloadStateHolder& workloads_;
  Stats& stats_;
  std::map<Id, Entry> entries_;
  Interned<Subject, SubjectHash> subjects_;
  Id next_id_ = 1;
  std::shared_ptr<const WorkloadState> checked_;
  EventLoop::TimerId timer_ = 0;
};

}  // namespace ferry::agent
