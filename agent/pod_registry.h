// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Enrollment: the agent side of the CNI protocol. Adds and deletes pods (listeners, capture,
// the local pod table), journals every change, and replays the journal after a restart. Runs on
// the enrollment server's thread; one mutex serialises enrol/delete, never touched by workers.

#include <map>
#include <mutex>
#include <vector>

#include "agent/worker_context.h"
#include "enroll/journal.h"
#include "enroll/server.h"

namespace ferry::agent {

class PodRegistry : public enroll::Handler {
 public:
  PodRegistry(Shared& shared, std::vector<WorkerContext*> workers, std::string journal_path);

  // Re-enrolls the journal's pods whose network namespace still exists; the others are
  // dropped with a log line. Returns how many were restored.
  absl::StatusOr<size_t> restore();
  enroll::Reply handle(const enroll::Request& request) override;
  // Closes every pod's listeners (shutdown, drain). The pods stay captured, so their
  // connections are refused until the next agent re-attaches (fail closed); the journal is kept
  // for that agent's replay. Only a CNI DEL ends a pod's capture.
  void stopAll();
  size_t size() const;

 private:
  absl::Status add(const enroll::PodInfo& pod);
  absl::Status del(const std::string& uid);
  void publish();  // rebuilds the local pod table; mu_ held
  absl::Status persist();

  Shared& shared_;
  std::vector<WorkerContext*> workers_;
  enroll::Journal journal_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const LocalPod>> pods_;
};

}  // namespace ferry::agent
