// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The shared bounded wait (test/eventually.h).
#include "eventually.h"

#include <atomic>
#include <thread>

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;

TEST_CASE("eventually sees a condition another thread makes true", "[testing]") {
  std::atomic<bool> done{false};
  std::thread setter([&] {
    std::this_thread::sleep_for(milliseconds(30));  // the other side's work, not a wait
    done = true;
  });
  CHECK(eventually([&] { return done.load(); }, milliseconds(5000), "the setter thread"));
  setter.join();
}

TEST_CASE("eventually gives up at the timeout and polls a bounded number of times", "[testing]") {
  int polls = 0;
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(eventually(
      [&] {
        ++polls;
        return false;
      },
      milliseconds(200), "a condition that never holds"));
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= milliseconds(200));
  CHECK(waited < milliseconds(2000));
  // Backing off to 50 ms pauses: about 200 / 50 + the first fast polls, not thousands.
  CHECK(polls >= 3);
  CHECK(polls <= 20);
}

TEST_CASE("eventually checks once even with no time to wait", "[testing]") {
  int polls = 0;
  CHECK(eventually(
      [&] {
        ++polls;
        return true;
      },
      milliseconds(0), "an immediate condition"));
  CHECK(polls == 1);
}

}  // namespace
}  // namespace ferry::testing
