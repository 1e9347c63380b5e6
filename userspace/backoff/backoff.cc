// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "backoff/backoff.h"

#include <algorithm>
#include <cmath>

#include "absl/random/distributions.h"

namespace ferry {

absl::Duration backoffCeiling(const BackoffPolicy& policy, uint32_t failures) {
  if (failures == 0 || policy.initial <= absl::ZeroDuration()) {
    return absl::ZeroDuration();
  }
  // Past 2^62 every sane initial delay is beyond every cap; stopping there keeps pow() finite.
  const double factor = std::pow(policy.multiplier, std::min<uint32_t>(failures - 1, 62));
  const absl::Duration grown = policy.initial * factor;  // saturates at InfiniteDuration
  return std::min(grown, policy.max);
}

absl::Duration backoffDelay(const BackoffPolicy& policy, uint32_t failures, absl::BitGenRef rng) {
  const int64_t cap_us = absl::ToInt64Microseconds(backoffCeiling(policy, failures));
  if (cap_us <= 0) {
    return absl::ZeroDuration();
  }
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  const int64_t floor_us = cap_us - static_cast<int64_t>(static_cast<double>(cap_us) * jitter);
  return absl::Microseconds(
      absl::Uniform<int64_t>(absl::IntervalClosedClosed, rng, floor_us, cap_us));
}

Backoff::Backoff(BackoffPolicy policy, uint64_t seed)
    : policy_(policy), rng_(seed != 0 ? seed : std::random_device{}()) {}

absl::Duration Backoff::next() {
  if (failures_ < UINT32_MAX) {
    ++failures_;
  }
  return backoffDelay(policy_, failures_, rng_);
}

}  // namespace ferry
