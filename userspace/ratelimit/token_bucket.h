// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A token bucket as GCRA (the generic cell rate algorithm): the whole state is one atomic
// "theoretical arrival time", advanced by compare-and-swap, so any number of threads share one
// bucket without a lock and without per-thread shares: the budget is exact agent-wide. A bucket
// of `burst` tokens refilled at `rate` per second admits, from full, at most
// burst + floor(elapsed / interval) takes in any `elapsed`, where interval = ceil(1e9 / rate) ns
// (exact for rates dividing 1e9, otherwise a hair under the rate, never over it).
//
// Time is the caller's (nanoseconds on a monotonic clock), so tests drive a fake clock.

#include <atomic>
#include <cstdint>

namespace ferry::ratelimit {

using Nanos = int64_t;
inline constexpr Nanos kSecond = 1'000'000'000;

struct Take {
  bool allowed = false;
  Nanos retry_after = 0;  // when refused: until the next token, > 0
};

class TokenBucket {
 public:
  // Full at `now`. A rate of 0 admits nothing (a refused policy's stand-in).
  TokenBucket(uint32_t rate, uint32_t burst, Nanos now);
  TokenBucket(const TokenBucket&) = delete;
  TokenBucket& operator=(const TokenBucket&) = delete;

  Take take(Nanos now);
  // Gives back one token taken (a later limit refused the request).
  void refund() { tat_.fetch_sub(interval_, std::memory_order_relaxed); }
  // Full again: indistinguishable from a new bucket, so it may be dropped and made anew.
  bool idle(Nanos now) const { return tat_.load(std::memory_order_relaxed) <= now; }
  Nanos interval() const { return interval_; }

 private:
  Nanos interval_;   // time one token takes to refill
  Nanos tolerance_;  // (burst - 1) * interval: how far ahead of now the bucket may run
  bool never_ = false;
  std::atomic<Nanos> tat_;
};

}  // namespace ferry::ratelimit
