// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The worker threads, one event loop each. A connection stays on the worker whose listener
// accepted it (listeners are per worker with SO_REUSEPORT), so nothing on the data path is
// shared between workers.

#include <memory>
#include <thread>
#include <vector>

#include "agent/io/event_loop.h"

namespace ferry::agent {

class Workers {
 public:
  explicit Workers(int count);
  ~Workers();  // stops and joins
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  void start();
  void stop();
  int size() const { return static_cast<int>(loops_.size()); }
  EventLoop& loop(int index) { return *loops_[index]; }
  // Runs fn(worker index, loop) on every worker and waits until all have run it.
  void runOnEach(const std::function<void(int, EventLoop&)>& fn);

 private:
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::thread> threads_;
};

}  // namespace ferry::agent
