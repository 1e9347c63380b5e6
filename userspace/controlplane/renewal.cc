// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controlplane/renewal.h"

#include <algorithm>
#include <cmath>

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
  // Exponential backoff capped at max_backoff, with full jitter in [base/2, base].
  const double factor = std::ldexp(1.0, std::min(failures_ - 1, 30));
  absl::Duration base = std::min(policy_.initial_backoff * factor, policy_.max_backoff);
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  absl::Duration delay = base * jitter(rng_);
  next_ = now + delay;
  // A renewal retry never waits past expiry: one last try right at the end beats a gap.
  if (current_.has_value() && now < current_->not_after && next_ > current_->not_after) {
    next_ = current_->not_after;
  }
  return true;
}

}  // namespace ferry::controlplane
