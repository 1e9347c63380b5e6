// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// What an uncontended absl::Mutex lock costs with Debian's Abseil as it comes (its deadlock
// detector on: the baseline of the same run) and after process::configure(), what ferry-agent and
// ferry-controller run. One lock alone, and two held together (a lock taken while holding
// another: the detector records the order). See bench/README.md. Not a test: prints figures,
// asserts nothing.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "process/process.h"

using Clock = std::chrono::steady_clock;

namespace {

struct Cost {
  double single_ns, nested_ns;
};

// Nanoseconds per lock + unlock, over `seconds` for each of the two patterns.
Cost measure(double seconds) {
  absl::Mutex a, b;
  auto perLock = [seconds](auto&& lockOnce, int locks_per_call) {
    size_t calls = 0;
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    while (Clock::now() < end) {
      for (int i = 0; i < 1024; ++i) {
        lockOnce();
      }
      calls += 1024;
    }
    const double took = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
    return took / static_cast<double>(calls * locks_per_call);
  };
  Cost c;
  c.single_ns = perLock([&] { absl::MutexLock l(&a); }, 1);
  c.nested_ns = perLock(
      [&] {
        absl::MutexLock l(&a);
        absl::MutexLock m(&b);
      },
      2);
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  const Cost as_shipped = measure(seconds);
  ferry::process::configure();
  const Cost configured = measure(seconds);
  std::printf("Abseil as Debian ships it (baseline): %.1f ns per lock, %.1f ns nested\n",
              as_shipped.single_ns, as_shipped.nested_ns);
  std::printf("after process::configure():          %.1f ns per lock, %.1f ns nested\n",
              configured.single_ns, configured.nested_ns);
  std::printf("baseline / configured: %.2fx, %.2fx nested\n",
              as_shipped.single_ns / configured.single_ns,
              as_shipped.nested_ns / configured.nested_ns);
  return 0;
}
