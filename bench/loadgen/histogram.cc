// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "loadgen/histogram.h"

#include <algorithm>
#include <cmath>

namespace ferry::loadgen {

int Histogram::bucketOf(int64_t value_ns) {
  if (value_ns < 0) {
    value_ns = 0;
  }
  const uint64_t v = static_cast<uint64_t>(value_ns);
  if (v < (1u << kSubBits)) {
    return static_cast<int>(v);
  }
  const int msb = 63 - __builtin_clzll(v);
  const int shift = msb - (kSubBits - 1);  // leaves the top in [64, 128)
  const int bucket = 64 * shift + static_cast<int>(v >> shift);
  return std::min(bucket, kBuckets - 1);
}

int64_t Histogram::bucketLow(int bucket) {
  if (bucket < (1 << kSubBits)) {
    return bucket;
  }
  const int shift = bucket / 64 - 1;
  const int64_t top = bucket - 64 * shift;
  return top << shift;
}

int64_t Histogram::bucketHigh(int bucket) {
  if (bucket < (1 << kSubBits)) {
    return bucket + 1;
  }
  const int shift = bucket / 64 - 1;
  const int64_t top = bucket - 64 * shift;
  return (top + 1) << shift;
}

void Histogram::record(int64_t value_ns) {
  value_ns = std::max<int64_t>(value_ns, 0);
  ++buckets_[bucketOf(value_ns)];
  ++count_;
  max_ = std::max(max_, value_ns);
  min_ = std::min(min_, value_ns);
}

void Histogram::merge(const Histogram& other) {
  for (int i = 0; i < kBuckets; ++i) {
    buckets_[i] += other.buckets_[i];
  }
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
  min_ = std::min(min_, other.min_);
}

int64_t Histogram::percentile(double q) const {
  if (count_ == 0) {
    return 0;
  }
  q = std::clamp(q, 0.0, 1.0);
  const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * count_)));
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      const int64_t mid = (bucketLow(i) + bucketHigh(i) - 1) / 2;
      return std::clamp(mid, min(), max_);
    }
  }
  return max_;
}

uint64_t Histogram::countAtOrAbove(int64_t value_ns) const {
  uint64_t n = 0;
  for (int i = bucketOf(value_ns); i < kBuckets; ++i) {
    n += buckets_[i];
  }
  return n;
}

OpenLoopSchedule::OpenLoopSchedule(int64_t start_ns, double rate_per_second, int connections)
    : start_ns_(start_ns), period_ns_(1e9 / rate_per_second), connections_(connections) {}

int64_t OpenLoopSchedule::intendedNs(uint64_t index) const {
  return start_ns_ + static_cast<int64_t>(std::llround(static_cast<double>(index) * period_ns_));
}

uint64_t OpenLoopSchedule::dueCount(int64_t now_ns) const {
  if (now_ns < start_ns_) {
    return 0;
  }
  uint64_t n = static_cast<uint64_t>(static_cast<double>(now_ns - start_ns_) / period_ns_) + 1;
  // Floating point may land one off either way; settle it with intendedNs.
  while (n > 0 && intendedNs(n - 1) > now_ns) {
    --n;
  }
  while (intendedNs(n) <= now_ns) {
    ++n;
  }
  return n;
}

}  // namespace ferry::loadgen
