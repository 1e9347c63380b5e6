// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// One epoll loop per worker thread. Every socket belongs to exactly one loop for its whole
// life, so the data path needs no locks: the only cross-thread entry is post(), used for
// control work (enrol a pod, swap config), never per byte.
//
// Level-triggered: a handler that cannot take more bytes (its peer's buffer is full) drops
// EPOLLIN from its interest set, which is how backpressure reaches the kernel's TCP window.

#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/status.h"

namespace ferry::agent {

class EventHandler {
 public:
  virtual ~EventHandler() = default;
  virtual void onEvents(uint32_t events) = 0;
};

// Objects whose destruction must wait until the current batch of events is done (another
// event in the batch may still point at them).
class Deferred {
 public:
  virtual ~Deferred() = default;
};

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;
  using TimerId = uint64_t;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  absl::Status add(int fd, uint32_t events, EventHandler* handler);
  absl::Status modify(int fd, uint32_t events, EventHandler* handler);
  void remove(int fd);

  // Runs `fn` on this loop's thread (thread-safe; wakes the loop).
  void post(std::function<void()> fn);
  // Destroys `object` after the current event batch.
  void deleteLater(std::unique_ptr<Deferred> object);
  // Runs `fn` on this loop's thread after the current event batch (work queued by a timer or a
  // posted function: after the next poll, which then does not wait); not thread-safe. One round
  // per batch: what a function run there queues waits for the next one, so an owner that re-arms
  // itself never starves the sockets. For in-process ends that report like a level-triggered
  // socket (agent/http/upstream_link.h).
  void afterBatch(std::function<void()> fn) { after_batch_.push_back(std::move(fn)); }
  TimerId addTimer(std::chrono::milliseconds after, std::function<void()> fn);
  // Runs `fn` on this loop's thread each time before the loop waits for events, and as it ends:
  // for work that gathers what a round produced (accesslog::FileSink::flushDeferred). Set before
  // run().
  void setBeforeWait(void (*fn)()) { before_wait_ = fn; }
  void cancelTimer(TimerId id);

  void run();   // until stop()
  void stop();  // thread-safe
  bool inLoopThread() const;

 private:
  void drainPosted();
  void runAfterBatch();
  int runTimers();  // returns the epoll timeout until the next timer (-1: none)

  int epoll_fd_;
  int wake_fd_;
  std::unique_ptr<EventHandler> waker_;  // reads wake_fd_ when epoll reports it
  bool stopping_ = false;
  std::mutex mu_;  // guards posted_ and stop_requested_
  std::vector<std::function<void()>> posted_;
  bool stop_requested_ = false;
  std::vector<std::unique_ptr<Deferred>> deferred_;
  std::vector<std::function<void()>> after_batch_;
  std::vector<std::function<void()>> running_after_batch_;  // keeps its capacity across rounds
  void (*before_wait_)() = nullptr;
  using TimerOrder = std::multimap<Clock::time_point, TimerId>;
  using Timers = std::map<TimerId, std::pair<Clock::time_point, std::function<void()>>>;
  // Keeps the nodes of a cancelled or fired timer (its function already gone) for addTimer:
  // an HTTP request re-arms two timers, which then allocate nothing.
  void recycle(TimerOrder::node_type order, Timers::node_type timer);
  static constexpr size_t kSpareTimers = 64;
  TimerOrder timer_order_;
  Timers timers_;
  std::vector<TimerOrder::node_type> spare_order_;
  std::vector<Timers::node_type> spare_timers_;
  TimerId next_timer_ = 1;
  std::atomic<uint64_t> thread_id_{0};
};

}  // namespace ferry::agent
