// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "loadgen/histogram.h"

#include <catch2/catch.hpp>

namespace ferry::loadgen {
namespace {

TEST_CASE("histogram buckets tile the range and stay within 1.6 percent", "[loadgen]") {
  for (int b = 0; b < 3000; ++b) {
    CHECK(Histogram::bucketHigh(b) == Histogram::bucketLow(b + 1));
    CHECK(Histogram::bucketOf(Histogram::bucketLow(b)) == b);
    CHECK(Histogram::bucketOf(Histogram::bucketHigh(b) - 1) == b);
  }
  for (int64_t v : {1000LL, 123456LL, 999999999LL, 60000000000LL}) {
    const int b = Histogram::bucketOf(v);
    const double width = static_cast<double>(Histogram::bucketHigh(b) - Histogram::bucketLow(b));
    CHECK(width / static_cast<double>(v) <= 1.0 / 64);
  }
}

TEST_CASE("histogram percentiles of a uniform series", "[loadgen]") {
  Histogram h;
  for (int us = 1; us <= 1000; ++us) {
    h.record(us * 1000LL);
  }
  CHECK(h.count() == 1000);
  CHECK(h.max() == 1000000);
  CHECK(h.min() == 1000);
  CHECK(h.percentile(0.5) == Approx(500000).epsilon(0.016));
  CHECK(h.percentile(0.9) == Approx(900000).epsilon(0.016));
  CHECK(h.percentile(0.99) == Approx(990000).epsilon(0.016));
  CHECK(h.percentile(1.0) <= 1000000);
  CHECK(h.percentile(0.0) >= 1000);
  // Bucket granularity: the bucket holding 900 us starts up to 16 us lower.
  CHECK(h.countAtOrAbove(900000) >= 101);
  CHECK(h.countAtOrAbove(900000) <= 101 + 17);
}

TEST_CASE("histogram merge adds counts and keeps extremes", "[loadgen]") {
  Histogram a, b;
  a.record(10);
  b.record(5000000);
  b.record(-3);  // clamped to 0, never a negative bucket
  a.merge(b);
  CHECK(a.count() == 3);
  CHECK(a.max() == 5000000);
  CHECK(a.min() == 0);
  CHECK(Histogram().percentile(0.99) == 0);
}

TEST_CASE("open-loop schedule is fixed by the clock, not by completions", "[loadgen]") {
  // 1,000 requests/s over 4 connections from t = 5 s (a fake clock in nanoseconds).
  const int64_t start = 5'000'000'000;
  OpenLoopSchedule s(start, 1000, 4);
  CHECK(s.intendedNs(0) == start);
  CHECK(s.intendedNs(1) == start + 1'000'000);
  CHECK(s.intendedNs(1000) == start + 1'000'000'000);
  CHECK(s.connectionOf(0) == 0);
  CHECK(s.connectionOf(5) == 1);
  CHECK(s.connectionOf(7) == 3);
  CHECK(s.dueCount(start - 1) == 0);
  CHECK(s.dueCount(start) == 1);
  CHECK(s.dueCount(start + 999'999) == 1);
  CHECK(s.dueCount(start + 1'000'000) == 2);
  // A 250 ms stall: 250 more requests are due when it ends, all charged from their own time.
  CHECK(s.dueCount(start + 250'000'000) == 251);
  // Rates that do not divide a second evenly still count every request once.
  OpenLoopSchedule odd(0, 3, 1);
  CHECK(odd.dueCount(999'999'999) == 3);
  CHECK(odd.dueCount(1'000'000'000) == 4);
}

}  // namespace
}  // namespace ferry::loadgen
