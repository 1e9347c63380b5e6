// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "ratelimit/token_bucket.h"

#include <algorithm>

namespace ferry::ratelimit {

TokenBucket::TokenBucket(uint32_t rate, uint32_t burst, Nanos now)
    : interval_(rate == 0 ? kSecond : (kSecond + rate - 1) / rate),
      tolerance_(static_cast<Nanos>(std::max<uint32_t>(burst, 1) - 1) * interval_),
      never_(rate == 0),
      tat_(now) {}

Take TokenBucket::take(Nanos now) {
  if (never_) {
    return {false, kSecond};
  }
  Nanos tat = tat_.load(std::memory_order_relaxed);
  for (;;) {
    const Nanos base = std::max(tat, now);
    const Nanos ahead = base - now;
    if (ahead > tolerance_) {
      return {false, ahead - tolerance_};
    }
    if (tat_.compare_exchange_weak(tat, base + interval_, std::memory_order_relaxed)) {
      return {true, 0};
    }
  }
}

}  // namespace ferry::ratelimit
