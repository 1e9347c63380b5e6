// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controlplane/renewal.h"

#include <algorithm>

#include "backoff/backoff.h"

namespace ferry::controlplane {

CertRenewer::CertRenewer(const Clock& clock, IssueFn issue, RenewalPolicy policy, uint64_t seed)
    : clock_(clock), issue_(std::move(issue)), policy_(policy), rng_(seed) {}

bool CertRenewer::valid() const {
  if (!current_.has_value()) {
    return false;
  }
  absl::Time now = clock_.now();
  return now >= current_->not_before && now < current_->not_after;
}

bool CertRenewer::tick() {
  const absl::Time now = clock_.now();
  if (now < next_) {
    return false;
  }
  absl::StatusOr<IssuedCert> issued = issue_();
  if (issued.ok()) {
    current_ = std::move(*issued);
    failures_ = 0;
    last_error_ = absl::OkStatus();
    const absl::Duration lifetime = current_->not_after - current_->not_before;
    next_ = current_->not_before + lifetime * policy_.renew_at_fraction;
    return true;
  }
  last_error_ = issued.status();
  ++failures_;
  // Exponential backoff capped at max_backoff, jittered in [ceiling/2, ceiling].
  next_ = now + backoffDelay({.initial = policy_.initial_backoff,
                              .max = policy_.max_backoff,
                              .multiplier = 2.0,
                              .jitter = 0.5},
                             static_cast<uint32_t>(failures_), rng_);
  // A renewal retry never waits past expiry: one last try right at the end beats a gap.
  if (current_.has_value() && now < current_->not_after && next_ > current_->not_after) {
    next_ = current_->not_after;
  }
  return true;
}

}  // namespace ferry::controlplane
