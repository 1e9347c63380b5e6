// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "routing/retry.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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

bool retryableGrpc(const RetryPolicy& policy, uint32_t tries_done, int grpc_status) {
  if (tries_done == 0 || tries_done > policy.attempts || grpc_status < 0) {
    return false;
  }
  return std::find(policy.grpc_statuses.begin(), policy.grpc_statuses.end(),
                   static_cast<uint32_t>(grpc_status)) != policy.grpc_statuses.end();
}

absl::StatusOr<std::optional<RetryAnnotations>> parseRetryAnnotations(
    const std::map<std::string, std::string>& annotations) {
  auto on = annotations.find(kRetryGrpcOn);
  auto attempts = annotations.find(kRetryAttempts);
  if (on == annotations.end() && attempts == annotations.end()) {
    return std::nullopt;
  }
  RetryAnnotations out;
  if (on != annotations.end()) {
    static const std::pair<std::string_view, uint32_t> kNames[] = {{"cancelled", 1},
                                                                   {"deadline-exceeded", 4},
                                                                   {"resource-exhausted", 8},
                                                                   {"internal", 13},
                                                                   {"unavailable", 14}};
    for (absl::string_view part : absl::StrSplit(on->second, ',', absl::SkipWhitespace())) {
      const std::string name(absl::StripAsciiWhitespace(part));
      auto known = std::find_if(std::begin(kNames), std::end(kNames),
                                [&](const auto& k) { return k.first == name; });
      if (known == std::end(kNames)) {
        return absl::InvalidArgumentError(absl::StrCat(
            kRetryGrpcOn, ": '", name,
            "' is not cancelled, deadline-exceeded, internal, resource-exhausted or unavailable"));
      }
      out.grpc_statuses.push_back(known->second);
    }
  }
  if (attempts != annotations.end()) {
    uint32_t n = 0;
    if (!absl::SimpleAtoi(attempts->second, &n) || n > 100) {
      return absl::InvalidArgumentError(absl::StrCat(kRetryAttempts, ": '", attempts->second,
                                                     "' is not a whole number from 0 to 100"));
    }
    out.attempts = n;
  }
  return out;
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
