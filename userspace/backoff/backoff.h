// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Exponential backoff with jitter and a cap, written once for every retry loop: the
// Kubernetes informers, the agent's control-plane client and certificate renewal, HTTP route
// retries and the listeners' accept pauses. Jitter keeps many clients that failed together from
// retrying in lockstep; the cap bounds the wait.

#include <cstdint>
#include <random>

#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"

namespace ferry {

struct BackoffPolicy {
  absl::Duration initial = absl::Milliseconds(200);
  absl::Duration max = absl::Seconds(30);  // absl::InfiniteDuration(): no cap
  double multiplier = 2.0;
  // Each delay is drawn uniformly from [(1 - jitter) * ceiling, ceiling]: 0 waits exactly the
  // ceiling, 0.5 between half and all of it, 1 anywhere up to it ("full jitter").
  double jitter = 0.5;
};

// The un-jittered delay after `failures` consecutive failures (1: the first retry):
// min(max, initial * multiplier^(failures - 1)); zero for no failure.
absl::Duration backoffCeiling(const BackoffPolicy& policy, uint32_t failures);

// A delay drawn below backoffCeiling(policy, failures), to the microsecond.
absl::Duration backoffDelay(const BackoffPolicy& policy, uint32_t failures, absl::BitGenRef rng);

// The same, counting failures itself: next() after each failure, reset() after a success.
class Backoff {
 public:
  // seed 0: from std::random_device.
  explicit Backoff(BackoffPolicy policy = {}, uint64_t seed = 0);
  absl::Duration next();
  void reset() { failures_ = 0; }
  // The ceiling the next call draws below.
  absl::Duration ceiling() const { return backoffCeiling(policy_, failures_ + 1); }
  uint32_t failures() const { return failures_; }

 private:
  BackoffPolicy policy_;
  uint32_t failures_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace ferry
