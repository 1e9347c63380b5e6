// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "routing/retry.h"

#include <algorithm>
#include <cmath>

#include "absl/random/distributions.h"

namespace ferry::routing {

RetryBudget::RetryBudget(double ratio, uint32_t min_concurrency)
    : ratio_(std::max(0.0, ratio)), min_concurrency_(min_concurrency) {}

void RetryBudget::requestStarted() {
  active_.fetch_add(1, std::memory_order_relaxed);
}

void RetryBudget::requestFinished() {
  active_.fetch_sub(1, std::memory_order_relaxed);
}

uint64_t RetryBudget::limit() const {
  double active = static_cast<double>(active_.load(std::memory_order_relaxed));
  return std::max<uint64_t>(min_concurrency_, static_cast<uint64_t>(active * ratio_));
}

bool RetryBudget::tryAcquireRetry() {
  uint64_t current = retries_.load(std::memory_order_relaxed);
  for (;;) {
    if (current >= limit()) {
      exhausted_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (retries_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed)) {
      return true;
    }
  }
}

void RetryBudget::retryFinished() {
  retries_.fetch_sub(1, std::memory_order_relaxed);
}

bool idempotentMethod(std::string_view method) {
  for (std::string_view m : {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}) {
    if (method == m) {
      return true;
    }
  }
  return false;
}

bool retryable(const RetryPolicy& policy, uint32_t tries_done, std::string_view method,
               std::optional<int> status, bool request_sent) {
  if (tries_done == 0 || tries_done > policy.attempts) {
    return false;
  }
  if (!status) {
    return !request_sent;
  }
  bool listed = std::find(policy.status_codes.begin(), policy.status_codes.end(),
                          static_cast<uint32_t>(*status)) != policy.status_codes.end();
  return listed && (idempotentMethod(method) || !request_sent);
}

absl::Duration backoff(const RetryPolicy& policy, uint32_t retry_number, absl::BitGenRef rng) {
  if (retry_number == 0 || policy.base_backoff <= absl::ZeroDuration()) {
    return absl::ZeroDuration();
  }
  // 2^30 times any sane base is past every cap; stopping there keeps the multiply finite.
  uint32_t exponent = std::min<uint32_t>(retry_number - 1, 30);
  absl::Duration cap = policy.base_backoff * static_cast<int64_t>(uint64_t{1} << exponent);
  if (policy.max_backoff > absl::ZeroDuration()) {
    cap = std::min(cap, policy.max_backoff);
  }
  int64_t cap_us = absl::ToInt64Microseconds(cap);
  return absl::Microseconds(absl::Uniform<int64_t>(absl::IntervalClosedClosed, rng, 0, cap_us));
}

}  // namespace ferry::routing
