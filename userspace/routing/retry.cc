// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "routing/retry.h"

#include <algorithm>

#include "backoff/backoff.h"

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
  BackoffPolicy exponential{.initial = policy.base_backoff,
                            .max = policy.max_backoff > absl::ZeroDuration()
                                       ? policy.max_backoff
                                       : absl::InfiniteDuration(),
                            .multiplier = 2.0,
                            .jitter = 1.0};
  return backoffDelay(exponential, retry_number, rng);
}

}  // namespace ferry::routing
