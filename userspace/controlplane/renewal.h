// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Certificate renewal schedule, shared by the node certificate and workload certificates:
// renew at half-life; after a failure retry with exponential backoff and full jitter (so a
// controller coming back is not hit by every agent at once), never waiting past expiry.
// Single-threaded: the owner calls tick() from its loop.

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controlplane/clock.h"

namespace ferry::controlplane {

struct RenewalPolicy {
  double renew_at_fraction = 0.5;  // of the lifetime, from notBefore
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Minutes(5);
};

struct IssuedCert {
  std::string cert_pem;
  absl::Time not_before;
  absl::Time not_after;
};

class CertRenewer {
 public:
  using IssueFn = std::function<absl::StatusOr<IssuedCert>()>;

  CertRenewer(const Clock& clock, IssueFn issue, RenewalPolicy policy = {},
              uint64_t seed = std::random_device{}());

  // Issues when due (or when there is no certificate yet). Returns whether it tried.
  bool tick();

  absl::Time nextAttempt() const { return next_; }
  const std::optional<IssuedCert>& current() const { return current_; }
  int consecutiveFailures() const { return failures_; }
  const absl::Status& lastError() const { return last_error_; }
  // Whether the certificate in hand is still valid (false before the first success).
  bool valid() const;

 private:
  const Clock& clock_;
  IssueFn issue_;
  RenewalPolicy policy_;
  std::mt19937_64 rng_;
  std::optional<IssuedCert> current_;
  absl::Time next_ = absl::InfinitePast();
  int failures_ = 0;
  absl::Status last_error_;
};

}  // namespace ferry::controlplane
