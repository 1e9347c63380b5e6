// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Leader election on a coordination.k8s.io/v1 Lease, the way Kubernetes' own controllers do it.
// Every ferry-controller replica serves agents (reads are safe to share); only the leader writes
// (the trust-bundle ConfigMap, root rotations), so two replicas never fight over an object.
//
// Expiry is judged on this replica's own clock: a lease counts as expired once its record has
// not changed for lease_duration since we last saw it change, so clock skew between replicas
// cannot make two leaders. A leader that cannot renew for renew_deadline steps down before any
// other replica may take over (renew_deadline < lease_duration).

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "kube/client.h"

namespace ferry::controller {

struct LeaderElectionConfig {
  std::string lease_namespace;
  std::string lease_name = "ferry-controller";
  std::string identity;  // this replica: its pod name
  absl::Duration lease_duration = absl::Seconds(15);
  absl::Duration renew_deadline = absl::Seconds(10);
  absl::Duration retry_period = absl::Seconds(2);
  absl::Status validate() const;
};

class LeaderElector {
 public:
  using Clock = std::function<absl::Time()>;
  LeaderElector(const kube::Client& client, LeaderElectionConfig config, Clock clock = absl::Now);
  ~LeaderElector();  // stop()

  // One round: acquire the lease when it is free or expired, renew it when ours. Returns
  // whether this replica leads afterwards. The background loop calls it; tests call it directly.
  bool step();

  // Runs step() every retry_period on a thread; `on_change(true/false)` when leadership changes.
  void start(std::function<void(bool)> on_change);
  // Stops the loop and, when leading, gives the lease up (holder cleared) so another replica
  // takes over at once instead of after lease_duration.
  void stop();

  bool leading() const { return leading_.load(); }
  std::string lastError() const;

 private:
  absl::Status tryAcquireOrRenew(absl::Time now);
  void setError(const absl::Status& status);

  const kube::Client& client_;
  const LeaderElectionConfig config_;
  const Clock clock_;
  std::atomic<bool> leading_{false};
  absl::Time last_renew_ = absl::InfinitePast();
  // The lease record as last seen, and when (our clock) it last changed.
  std::string observed_record_;
  absl::Time observed_at_ = absl::InfinitePast();

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace ferry::controller
