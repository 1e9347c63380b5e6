// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <map>
#include <string>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

// Retries: which failed tries may be repeated, how long to wait, and a budget so that a failing
// backend does not get its load multiplied by every client's retries.
namespace ferry::routing {

struct RetryPolicy {
  uint32_t attempts = 0;                // retries after the first try (0 = none)
  std::vector<uint32_t> status_codes;   // retry on these response codes (e.g. 503)
  std::vector<uint32_t> grpc_statuses;  // retry gRPC answers with these grpc-status values
  absl::Duration base_backoff = absl::Milliseconds(25);
  absl::Duration max_backoff = absl::Milliseconds(250);
};

// Retries may add at most `ratio` of active requests, plus `min_concurrency` (Envoy's retry
// budget), so retries cannot storm. Lock-free; shared by every worker of one backend.
class RetryBudget {
 public:
  explicit RetryBudget(double ratio = 0.2, uint32_t min_concurrency = 3);
  void requestStarted();
  void requestFinished();
  bool tryAcquireRetry();  // false: budget exhausted, do not retry
  void retryFinished();

  // The number of retries allowed at the same time right now.
  uint64_t limit() const;
  uint64_t activeRetries() const { return retries_.load(std::memory_order_relaxed); }
  uint64_t exhaustedTotal() const { return exhausted_.load(std::memory_order_relaxed); }

 private:
  const double ratio_;
  const uint32_t min_concurrency_;
  std::atomic<uint64_t> active_{0};
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> exhausted_{0};
};

// Methods RFC 9110 9.2.2 calls idempotent: repeating them is safe once the server saw them.
bool idempotentMethod(std::string_view method);

// Whether a failed try may be retried. `tries_done` counts the tries already made, the first
// one included (so with attempts = 2, tries 1 and 2 may be retried, the third may not).
// `status` is the response code, or nullopt when no response came (connect failure, reset).
//  - a response is retried when its code is in the policy and the method is idempotent;
//  - no response: retried only when nothing of the request was sent (any method, POST too),
//    since the server cannot have acted on it.
bool retryable(const RetryPolicy& policy, uint32_t tries_done, std::string_view method,
               std::optional<int> status, bool request_sent);

// gRPC retries by grpc-status (issue 22 point 1), configured by annotations on the route
// (Gateway API has no such field; GRPCRoute has no retry at all):
//   retry.ferry.dev/grpc-on: "unavailable,cancelled"   Istio's retryOn names for gRPC:
//                             cancelled, deadline-exceeded, internal, resource-exhausted,
//                             unavailable
//   retry.ferry.dev/attempts: "2"   retries for rules without a `retry` block of their own
// nullopt when neither is present; an error naming the annotation for a bad value.
inline constexpr char kRetryGrpcOn[] = "retry.ferry.dev/grpc-on";
inline constexpr char kRetryAttempts[] = "retry.ferry.dev/attempts";
struct RetryAnnotations {
  std::vector<uint32_t> grpc_statuses;
  std::optional<uint32_t> attempts;
};
absl::StatusOr<std::optional<RetryAnnotations>> parseRetryAnnotations(
    const std::map<std::string, std::string>& annotations);

// Whether a gRPC answer with `grpc_status` (from a trailers-only response's head) may be retried:
// the status is listed and tries remain. Any method: gRPC calls are POSTs, and listing a status
// says the calls are safe to repeat on it (as Envoy's retry_on does).
bool retryableGrpc(const RetryPolicy& policy, uint32_t tries_done, int grpc_status);

// Wait before retry number `retry_number` (1 for the first retry): exponential with full
// jitter, uniform in [0, min(max_backoff, base_backoff * 2^(retry_number-1))].
absl::Duration backoff(const RetryPolicy& policy, uint32_t retry_number, absl::BitGenRef rng);

}  // namespace ferry::routing
