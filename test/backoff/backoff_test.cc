// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The one backoff: exponential, capped, jittered below each ceiling.
#include "backoff/backoff.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <vector>

namespace ferry {
namespace {

using absl::Milliseconds;

TEST_CASE("ceilings grow by the multiplier up to the cap", "[backoff]") {
  struct Row {
    BackoffPolicy policy;
    uint32_t failures;
    absl::Duration ceiling;
  };
  const BackoffPolicy doubling{.initial = Milliseconds(100), .max = Milliseconds(1000)};
  const BackoffPolicy tripling{
      .initial = Milliseconds(10), .max = absl::InfiniteDuration(), .multiplier = 3.0};
  for (const Row& r : std::vector<Row>{
           {doubling, 0, absl::ZeroDuration()},
           {doubling, 1, Milliseconds(100)},
           {doubling, 2, Milliseconds(200)},
           {doubling, 4, Milliseconds(800)},
           {doubling, 5, Milliseconds(1000)},
           {doubling, 4000000000u, Milliseconds(1000)},  // no overflow past the cap
           {tripling, 3, Milliseconds(90)},
           {tripling, 200, absl::InfiniteDuration()},  // saturates, never wraps
           {BackoffPolicy{.initial = absl::ZeroDuration()}, 3, absl::ZeroDuration()},
       }) {
    INFO("failures " << r.failures);
    CHECK(backoffCeiling(r.policy, r.failures) == r.ceiling);
  }
}

TEST_CASE("jitter draws within [(1 - jitter) * ceiling, ceiling] and covers it", "[backoff]") {
  std::mt19937_64 rng(9);
  for (double jitter : {0.0, 0.5, 1.0}) {
    INFO("jitter " << jitter);
    const BackoffPolicy policy{
        .initial = Milliseconds(25), .max = Milliseconds(250), .jitter = jitter};
    for (uint32_t failures : {1u, 3u, 60u}) {
      const absl::Duration ceiling = backoffCeiling(policy, failures);
      const absl::Duration floor = ceiling * (1.0 - jitter);
      absl::Duration longest = absl::ZeroDuration();
      absl::Duration shortest = absl::InfiniteDuration();
      for (int i = 0; i < 2000; ++i) {
        absl::Duration d = backoffDelay(policy, failures, rng);
        REQUIRE(d >= floor);
        REQUIRE(d <= ceiling);
        longest = std::max(longest, d);
        shortest = std::min(shortest, d);
      }
      CHECK(longest >= ceiling - (ceiling - floor) * 0.1);
      CHECK(shortest <= floor + (ceiling - floor) * 0.1);
    }
  }
}

TEST_CASE("a Backoff counts failures, resets, and seeds spread retries apart", "[backoff]") {
  Backoff b({.initial = Milliseconds(100), .max = Milliseconds(1000)}, 42);
  const std::vector<int64_t> ceilings = {100, 200, 400, 800, 1000, 1000, 1000};
  std::vector<absl::Duration> delays;
  for (int64_t ceiling : ceilings) {
    CHECK(b.ceiling() == Milliseconds(ceiling));
    const absl::Duration d = b.next();
    CHECK(d <= Milliseconds(ceiling));
    CHECK(d >= Milliseconds(ceiling) / 2);
    delays.push_back(d);
  }
  CHECK(b.failures() == ceilings.size());
  // Jitter: the capped delays are not all the same value.
  CHECK_FALSE((delays[4] == delays[5] && delays[5] == delays[6]));
  b.reset();
  CHECK(b.failures() == 0);
  CHECK(b.ceiling() == Milliseconds(100));

  Backoff one({.initial = absl::Seconds(1), .max = absl::Seconds(60)}, 1);
  Backoff two({.initial = absl::Seconds(1), .max = absl::Seconds(60)}, 2);
  int differ = 0;
  for (int i = 0; i < 5; ++i) {
    differ += one.next() != two.next() ? 1 : 0;
  }
  CHECK(differ >= 4);
}

TEST_CASE("without jitter the delays are the ceilings exactly (accept pauses)", "[backoff]") {
  Backoff b({.initial = Milliseconds(50), .max = Milliseconds(1000), .jitter = 0.0});
  std::vector<absl::Duration> got;
  for (int i = 0; i < 7; ++i) {
    got.push_back(b.next());
  }
  CHECK(got == std::vector<absl::Duration>{Milliseconds(50), Milliseconds(100), Milliseconds(200),
                                           Milliseconds(400), Milliseconds(800), Milliseconds(1000),
                                           Milliseconds(1000)});
}

}  // namespace
}  // namespace ferry
