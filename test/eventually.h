// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The one way a test waits for something another thread or process does: bounded polling on a
// condition, never a sleep that hopes the other side was quick enough.
//
//   REQUIRE(eventually([&] { return server.connections() == 3; }, 5s, "3 open connections"));
//
// On timeout the failing CHECK/REQUIRE reports what was awaited and for how long. Code without
// Catch2 (the harness library) uses the same wait as pollUntil (test/poll_until.h).

#include <catch2/catch.hpp>
#include <chrono>
#include <string_view>
#include <utility>

#include "poll_until.h"

namespace ferry::testing {

// Polls `condition` until it holds (true) or `timeout` has passed (false, with a message); the
// pause between polls grows from 1 ms to `max_interval` (see pollUntil).
template <typename Condition>
[[nodiscard]] bool eventually(
    Condition&& condition, std::chrono::milliseconds timeout, std::string_view what,
    std::chrono::milliseconds max_interval = std::chrono::milliseconds(50)) {
  if (pollUntil(std::forward<Condition>(condition), timeout, max_interval)) {
    return true;
  }
  UNSCOPED_INFO("eventually: gave up after " << timeout.count() << " ms waiting for " << what);
  return false;
}

}  // namespace ferry::testing
