// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The sleeping a backoff (backoff/backoff.h) drives, behind an interface so tests use a fake
// clock instead of waiting.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

namespace ferry::kube {

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
