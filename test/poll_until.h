// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The bounded condition wait behind eventually() (test/eventually.h), without Catch2: for the
// harness library (which ferry-cluster, the demo and the benchmarks link too) and for helpers
// that report a failed wait through a Status of their own. Tests use eventually(), which also
// says what was awaited when it gives up.

#include <algorithm>
#include <chrono>
#include <thread>

namespace ferry::testing {

// Polls `condition` until it holds (true) or `timeout` has passed (false). The pause between
// polls starts at 1 ms and doubles up to `max_interval`, so fast conditions are seen at once and
// slow ones (a scrape, a process run) are not hammered. The condition is checked at least once,
// and once more at the deadline.
template <typename Condition>
[[nodiscard]] bool pollUntil(
    Condition&& condition, std::chrono::milliseconds timeout,
    std::chrono::milliseconds max_interval = std::chrono::milliseconds(50)) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  // Saturating: a timeout past the clock's range (absl::InfiniteDuration converted) waits forever.
  const Clock::time_point deadline =
      timeout >= std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() -
                                                                       start)
          ? Clock::time_point::max()
          : start + timeout;
  std::chrono::milliseconds pause(1);
  while (true) {
    if (condition()) {
      return true;
    }
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, max_interval);
  }
}

}  // namespace ferry::testing
