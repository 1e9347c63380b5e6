// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Time as a dependency, so renewal schedules are tested with a fake clock instead of sleeps.

#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ferry::controlplane {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time now() const = 0;
};

class SystemClock : public Clock {
 public:
  absl::Time now() const override { return absl::Now(); }
};

class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start) : now_(start) {}
  absl::Time now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  void advance(absl::Duration d) {
    std::lock_guard lock(mu_);
    now_ += d;
  }
  void set(absl::Time t) {
    std::lock_guard lock(mu_);
    now_ = t;
  }

 private:
  mutable std::mutex mu_;
  absl::Time now_;
};

}  // namespace ferry::controlplane
