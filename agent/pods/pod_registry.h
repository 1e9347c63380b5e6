// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Enrollment: the agent side of the CNI protocol. Adds and deletes pods (listeners, capture,
// the local pod table), journals every change, and replays the journal after a restart. Runs on
// the enrollment server's thread; one mutex serialises enrol/delete, never touched by workers.

#include <map>
#include <mutex>
#include <vector>

#include "agent/drain/handover.h"
#include "agent/io/sockets.h"
#include "agent/pods/capture.h"
#include "agent/pods/local_pods.h"
#include "agent/state/workload_state.h"
#include "enroll/journal.h"
#include "enroll/server.h"

namespace ferry::agent {

struct WorkerContext;

// What enrolment changes besides its journal: each worker's listeners (opened with `sockets`),
// the capture and the local pod table the data path reads. The state is only read (a pod's IPs
// when the CNI did not give them).
struct EnrollmentTargets {
  std::vector<WorkerContext*> workers;
  Capture& capture;
  const PodSockets& sockets;
  LocalPodsHolder& pods;
  const WorkloadStateHolder& workloads;
};

class PodRegistry : public enroll::Handler {
 public:
  PodRegistry(EnrollmentTargets targets, std::string journal_path);

  // Re-enrolls the journal's pods whose network namespace still exists; the others are
  // dropped with a log line. Returns how many were restored.
  // `inherited`: listeners handed over by the previous agent, used for the pods they belong to
  // (agent/drain/handover.h); may be null.
  absl::StatusOr<size_t> restore(InheritedListeners* inherited = nullptr);
  enroll::Reply handle(const enroll::Request& request) override;
  // Closes every pod's listeners (shutdown, drain). The pods stay captured, so their
  // connections are refused until the next agent re-attaches (fail closed); the journal is kept
  // for that agent's replay. Only a CNI DEL ends a pod's capture.
  void stopAll();
  // Closes every pod's listeners but keeps the pods (their connections are still served): the
  // next agent holds the same sockets and accepts from them.
  void closeListeners();
  // Every pod's listening sockets by hand-over name (they stay open and the workers').
  std::vector<std::pair<std::string, int>> listenerFds() const;
  size_t size() const;

 private:
  absl::Status add(const enroll::PodInfo& pod, InheritedListeners* inherited = nullptr);
  absl::Status del(const std::string& uid);
  void publish();  // rebuilds the local pod table; mu_ held
  absl::Status persist();

  EnrollmentTargets targets_;
  enroll::Journal journal_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const LocalPod>> pods_;
  std::map<std::string, std::vector<std::pair<std::string, int>>> listener_fds_;  // by uid
};

}  // namespace ferry::agent
