// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Exponential backoff with jitter, and the sleeping it drives, behind an interface so tests
// use a fake clock instead of waiting.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <vector>

namespace ferry::kube {

struct BackoffOptions {
  std::chrono::milliseconds initial{200};
  std::chrono::milliseconds max{30000};
  double multiplier = 2.0;
  // Each delay is drawn uniformly from [(1 - jitter) * d, d], so many controllers restarted
  // together do not retry in lockstep.
  double jitter = 0.5;
  uint64_t seed = 0;  // 0: seeded from std::random_device
};

class Backoff {
 public:
  explicit Backoff(BackoffOptions options = {});
  std::chrono::milliseconds next();
  void reset();
  // The un-jittered delay the next call is drawn below.
  std::chrono::milliseconds ceiling() const { return current_; }

 private:
  BackoffOptions options_;
  std::chrono::milliseconds current_;
  std::mt19937_64 rng_;
};

class Sleeper {
 public:
  virtual ~Sleeper() = default;
  // Returns false if woken early by wake().
  virtual bool sleepFor(std::chrono::milliseconds d) = 0;
  virtual void wake() = 0;
};

class RealSleeper : public Sleeper {
 public:
  bool sleepFor(std::chrono::milliseconds d) override;
  void wake() override;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
};

// Fake clock: records each requested delay and returns at once.
class FakeSleeper : public Sleeper {
 public:
  bool sleepFor(std::chrono::milliseconds d) override;
  void wake() override {}
  std::vector<std::chrono::milliseconds> sleeps() const;
  std::chrono::milliseconds total() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::chrono::milliseconds> sleeps_;
};

}  // namespace ferry::kube
