// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "kube/backoff.h"

#include <catch2/catch.hpp>

namespace ferry::kube {
namespace {

using std::chrono::milliseconds;

TEST_CASE("backoff grows exponentially under a cap, with jitter below each ceiling") {
  Backoff b({milliseconds(100), milliseconds(1000), 2.0, 0.5, 42});
  const std::vector<int64_t> ceilings = {100, 200, 400, 800, 1000, 1000, 1000};
  std::vector<int64_t> delays;
  for (int64_t ceiling : ceilings) {
    CHECK(b.ceiling().count() == ceiling);
    const int64_t d = b.next().count();
    CHECK(d <= ceiling);
    CHECK(d >= ceiling / 2);
    delays.push_back(d);
  }
  // Jitter: the capped delays are not all the same value.
  CHECK_FALSE((delays[4] == delays[5] && delays[5] == delays[6]));
  b.reset();
  CHECK(b.ceiling().count() == 100);
}

TEST_CASE("two backoffs with different seeds spread their retries") {
  Backoff a({milliseconds(1000), milliseconds(60000), 2.0, 0.5, 1});
  Backoff b({milliseconds(1000), milliseconds(60000), 2.0, 0.5, 2});
  int differ = 0;
  for (int i = 0; i < 5; ++i) {
    differ += a.next() != b.next() ? 1 : 0;
  }
  CHECK(differ >= 4);
}

TEST_CASE("real sleeper wakes early when asked") {
  RealSleeper s;
  s.wake();
  CHECK_FALSE(s.sleepFor(milliseconds(60000)));
}

}  // namespace
}  // namespace ferry::kube
