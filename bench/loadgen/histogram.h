// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A log-linear latency histogram in nanoseconds: 64 linear sub-buckets per power of two, so
// any recorded value is reported within 1.6% of itself, in fixed memory, whatever the range.

#include <array>
#include <cstdint>

namespace ferry::loadgen {

class Histogram {
 public:
  void record(int64_t value_ns);
  void merge(const Histogram& other);
  void reset() { *this = Histogram(); }

  uint64_t count() const { return count_; }
  int64_t max() const { return max_; }
  int64_t min() const { return count_ == 0 ? 0 : min_; }
  // The value at quantile q in [0, 1] (the smallest bucket holding the ceil(q*count)-th
  // value), reported as the bucket's midpoint clamped to [min, max]; 0 when empty.
  int64_t percentile(double q) const;
  // How many recorded values were at least `value_ns` (bucket granularity).
  uint64_t countAtOrAbove(int64_t value_ns) const;

  static int bucketOf(int64_t value_ns);
  static int64_t bucketLow(int bucket);
  static int64_t bucketHigh(int bucket);  // exclusive

 private:
  static constexpr int kSubBits = 7;  // 128 direct buckets, then 64 per octave
  static constexpr int kBuckets = 64 * 64 + 128;
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  int64_t max_ = 0;
  int64_t min_ = INT64_MAX;
};

// Open-loop schedule: request i is due at start + i / rate, on connection i % connections,
// whatever happened to earlier requests. Latency is measured from this intended time, so a
// stalled server is charged for every request that should have gone out during the stall
// (the coordinated-omission correction).
class OpenLoopSchedule {
 public:
  OpenLoopSchedule(int64_t start_ns, double rate_per_second, int connections);
  int64_t intendedNs(uint64_t index) const;
  int connectionOf(uint64_t index) const { return static_cast<int>(index % connections_); }
  // Number of requests due at or before now_ns (indices 0 .. dueCount-1).
  uint64_t dueCount(int64_t now_ns) const;

 private:
  int64_t start_ns_;
  double period_ns_;
  int connections_;
};

}  // namespace ferry::loadgen
