// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "kube/sleeper.h"

namespace ferry::kube {

bool RealSleeper::sleepFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  const bool woken = cv_.wait_for(lock, d, [&] { return woken_; });
  return !woken;
}

void RealSleeper::wake() {
  std::lock_guard<std::mutex> lock(mu_);
  woken_ = true;
  cv_.notify_all();
}

bool FakeSleeper::sleepFor(std::chrono::milliseconds d) {
  std::lock_guard<std::mutex> lock(mu_);
  sleeps_.push_back(d);
  return true;
}

std::vector<std::chrono::milliseconds> FakeSleeper::sleeps() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sleeps_;
}

std::chrono::milliseconds FakeSleeper::total() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::chrono::milliseconds t{0};
  for (auto d : sleeps_) {
    t += d;
  }
  return t;
}

}  // namespace ferry::kube
