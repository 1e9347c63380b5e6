// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "kube/backoff.h"

#include <algorithm>

namespace ferry::kube {

Backoff::Backoff(BackoffOptions options)
    : options_(options),
      current_(options.initial),
      rng_(options.seed != 0 ? options.seed : std::random_device{}()) {}

std::chrono::milliseconds Backoff::next() {
  const auto ceiling = current_;
  std::uniform_real_distribution<double> dist(1.0 - options_.jitter, 1.0);
  const auto delay = std::chrono::milliseconds(
      static_cast<int64_t>(static_cast<double>(ceiling.count()) * dist(rng_)));
  const auto grown = std::chrono::milliseconds(
      static_cast<int64_t>(static_cast<double>(current_.count()) * options_.multiplier));
  current_ = std::min(grown, options_.max);
  return std::max(delay, std::chrono::milliseconds(1));
}

void Backoff::reset() {
  current_ = options_.initial;
}

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
