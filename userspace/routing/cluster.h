// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/bit_gen_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

// Runtime state of one backend service:port, shared by the agent's workers: load balancing,
// zone preference, outlier detection and circuit breaking. Time comes from the caller, so
// tests drive it with a fake clock.
namespace ferry::routing {

enum class LbPolicy { kLeastRequest /* P2C, default */, kRoundRobin };

struct ClusterOptions {
  LbPolicy lb = LbPolicy::kLeastRequest;
  std::string local_zone;  // prefer endpoints in this zone when any is healthy there
  // Outlier detection.
  uint32_t consecutive_errors = 5;  // 5xx or connect failures in a row -> eject; 0 = never
  absl::Duration base_ejection = absl::Seconds(30);  // ejected for base * times_ejected
  uint32_t max_ejection_percent = 50;
  // Circuit breaking. pick() enforces max_requests; the connection limits are for the
  // ConnectionLimiter the caller keeps beside the Cluster (connection_limiter.h).
  uint32_t max_connections = 1024;
  uint32_t max_pending_requests = 1024;
  uint32_t max_requests = 1024;

  bool operator==(const ClusterOptions&) const = default;
};

struct EndpointRef {
  std::string ip;
  uint16_t port = 0;  // target port on the pod
  std::string zone;
  std::string workload_uid;
};

// kTimeout and kReset count as failures for outlier detection, like a 5xx: the client sees a
// 504 or 502 for them.
enum class Outcome { kSuccess, kHttp5xx, kConnectFailure, kTimeout, kReset };

enum class PickFailure { kNone, kNoEndpoint, kOverflow };

// One endpoint's state as seen by admin pages and tests.
struct EndpointStatus {
  EndpointRef endpoint;
  uint32_t active_requests = 0;
  uint32_t consecutive_errors = 0;
  uint32_t times_ejected = 0;
  bool ejected = false;
  absl::Time ejected_until = absl::InfinitePast();
};

class Cluster {
 public:
  Cluster(std::vector<EndpointRef> endpoints, ClusterOptions options);
  // Replaces the endpoint list (EndpointSlice change), keeping state of endpoints that remain
  // (same ip and port).
  void update(std::vector<EndpointRef> endpoints);

  // A picked endpoint; the caller holds it while the request is active and must call done().
  struct Pick {
    size_t index = 0;  // opaque to callers
    EndpointRef endpoint;
  };
  // nullopt when no endpoint is available or max_requests are active (answer 503; the
  // caller reads overflowed() or, race-free across workers, `failure` to tell which, for
  // response_flags UO vs UH). When every endpoint is ejected (possible only after update()
  // shrank the list) the pick ignores ejection rather than fail all traffic (Envoy's panic).
  std::optional<Pick> pick(absl::BitGenRef rng, absl::Time now, PickFailure* failure = nullptr);
  void done(const Pick& pick, Outcome outcome, absl::Time now);
  bool overflowed() const;  // last pick refused by the circuit breaker

  size_t healthyCount(absl::Time now) const;
  uint64_t ejectionsTotal() const;
  uint64_t overflowsTotal() const;
  size_t activeRequests() const;
  std::vector<EndpointStatus> status(absl::Time now) const;
  const ClusterOptions& options() const { return options_; }

 private:
  struct Endpoint {
    EndpointRef ref;
    uint32_t active = 0;
    uint32_t consecutive_errors = 0;
    uint32_t times_ejected = 0;
    absl::Time ejected_until = absl::InfinitePast();
    bool healthy(absl::Time now) const { return ejected_until <= now; }
  };

  size_t locateLocked(const Pick& pick) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void candidatesLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void recordFailureLocked(Endpoint& e, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t ejectedCountLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void refuseLocked(PickFailure* failure) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ClusterOptions options_;
  mutable absl::Mutex mu_;
  std::vector<Endpoint> endpoints_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> candidates_ ABSL_GUARDED_BY(mu_);  // scratch, reused by every pick
  uint64_t rr_next_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t active_ ABSL_GUARDED_BY(mu_) = 0;
  bool overflowed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t ejections_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t overflows_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ferry::routing
