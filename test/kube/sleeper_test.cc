// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "kube/sleeper.h"

#include <catch2/catch.hpp>

namespace ferry::kube {
namespace {

using std::chrono::milliseconds;

TEST_CASE("real sleeper wakes early when asked") {
  RealSleeper s;
  s.wake();
  CHECK_FALSE(s.sleepFor(milliseconds(60000)));
}

TEST_CASE("fake sleeper records each delay and returns at once") {
  FakeSleeper s;
  CHECK(s.sleepFor(milliseconds(100)));
  CHECK(s.sleepFor(milliseconds(250)));
  CHECK(s.sleeps() == std::vector<milliseconds>{milliseconds(100), milliseconds(250)});
  CHECK(s.total() == milliseconds(350));
}

}  // namespace
}  // namespace ferry::kube
