// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/workers.h"

#include <pthread.h>

#include <condition_variable>
#include <mutex>
#include <string>

#include "accesslog/accesslog.h"

namespace ferry::agent {

Workers::Workers(int count) {
  for (int i = 0; i < count; ++i) {
    loops_.push_back(std::make_unique<EventLoop>());
  }
}

Workers::~Workers() {
  stop();
}

void Workers::start() {
  for (size_t i = 0; i < loops_.size(); ++i) {
    threads_.emplace_back([this, i] {
      std::string name = "ferry-w" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      // The access log lines of a round of events go out in one write before the loop waits.
      accesslog::FileSink::deferFlushes();
      loops_[i]->setBeforeWait(&accesslog::FileSink::flushDeferred);
      loops_[i]->run();
    });
  }
}

void Workers::stop() {
  for (auto& loop : loops_) {
    loop->stop();
  }
  for (auto& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
  threads_.clear();
}

void Workers::runOnEach(const std::function<void(int, EventLoop&)>& fn) {
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;
  for (size_t i = 0; i < loops_.size(); ++i) {
    EventLoop* loop = loops_[i].get();
    loop->post([&, i, loop] {
      fn(static_cast<int>(i), *loop);
      std::lock_guard lock(mu);
      ++done;
      cv.notify_one();
    });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done == loops_.size(); });
}

}  // namespace ferry::agent
