// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "log/log.h"

#include <catch2/catch.hpp>

namespace ferry {
namespace {

TEST_CASE("a log limiter lets one line through per interval and counts the rest", "[log]") {
  LogLimiter hourly(std::chrono::hours(1));
  uint64_t suppressed = 99;
  REQUIRE(hourly.allow(&suppressed));
  CHECK(suppressed == 0);
  for (int i = 0; i < 1000; ++i) {
    CHECK_FALSE(hourly.allow(&suppressed));
  }
  CHECK(suppressedNote(0).empty());
  CHECK(suppressedNote(1000) == " (1000 more like it suppressed)");

  // A zero interval lets every line through; each reports what was held back before it.
  LogLimiter always(std::chrono::milliseconds(0));
  for (int i = 0; i < 3; ++i) {
    REQUIRE(always.allow(&suppressed));
    CHECK(suppressed == 0);
  }
}

}  // namespace
}  // namespace ferry
