// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The one way a test waits for something another thread or process does: bounded polling on a
// condition, never a sleep that hopes the other side was quick enough.
//
//   REQUIRE(eventually([&] { return server.connections() == 3; }, 5s, "3 open connections"));
//
// On timeout the failing CHECK/REQUIRE reports what was awaited and for how long.

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <string_view>
#include <thread>

namespace ferry::testing {

// Polls `condition` until it holds (true) or `timeout` has passed (false, with a message). The
// pause between polls starts at 1 ms and doubles up to `max_interval`, so fast conditions are
// seen at once and slow ones (a scrape, a process run) are not hammered.
template <typename Condition>
[[nodiscard]] bool eventually(
    Condition&& condition, std::chrono::milliseconds timeout, std::string_view what,
    std::chrono::milliseconds max_interval = std::chrono::milliseconds(50)) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + timeout;
  std::chrono::milliseconds pause(1);
  while (true) {
    if (condition()) {
      return true;
    }
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      break;
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, max_interval);
  }
  UNSCOPED_INFO("eventually: gave up after " << timeout.count() << " ms waiting for " << what);
  return false;
}

}  // namespace ferry::testing
