// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A worker's event loop as the clock of UpstreamAttempts (upstream_attempts.h): wall time from
// absl::Now(), timers on the loop at millisecond resolution.

#include <algorithm>
#include <chrono>
#include <functional>
#include <utility>

#include "absl/time/clock.h"
#include "agent/http/upstream_attempts.h"
#include "agent/io/event_loop.h"

namespace ferry::agent {

class LoopClock : public AttemptClock {
 public:
  explicit LoopClock(EventLoop& loop) : loop_(loop) {}
  absl::Time now() override { return absl::Now(); }
  TimerId after(absl::Duration wait, std::function<void()> fn) override {
    const int64_t ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(wait));
    return loop_.addTimer(std::chrono::milliseconds(ms), std::move(fn));
  }
  void cancel(TimerId id) override { loop_.cancelTimer(id); }

 private:
  EventLoop& loop_;
};

}  // namespace ferry::agent
