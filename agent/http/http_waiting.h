// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Slow clients on inbound HTTP ports (issue 17 point 6). A connection that has not sent a
// complete request head costs the agent two or three descriptors (client or socketpair, and the
// app) while it trickles bytes. Each such connection is "waiting": it must finish its head within
// --http-header-timeout-ms, and the agent keeps at most --max-http-awaiting-headers of them. A new
// waiter beyond the cap closes the oldest waiter of its own worker (so clients that send their
// head at once keep being served while slow ones are shed), and is refused only when its worker
// has none to close. Every worker keeps its own queue; the cap is counted over the agent.

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "agent/stats.h"

namespace ferry::agent {

class HeaderWaitQueue;

// A connection that can be waiting for a request head.
class HeaderWaiter {
 public:
  virtual ~HeaderWaiter() = default;
  // Closes the connection to make room for a newer waiter (the queue has already let it go).
  virtual void evictForNewer() = 0;
  bool waiting() const { return waiting_; }

 private:
  friend class HeaderWaitQueue;
  bool waiting_ = false;
  // Neighbours in its worker's queue while waiting: the queue links its waiters through them
  // rather than allocating a list node per request head awaited (one per keep-alive request).
  HeaderWaiter* older_ = nullptr;
  HeaderWaiter* newer_ = nullptr;
};

// One per worker thread; not thread-safe apart from the agent-wide count.
class HeaderWaitQueue {
 public:
  HeaderWaitQueue(std::atomic<int64_t>& agent_waiting, Stats& stats)
      : agent_waiting_(agent_waiting), stats_(stats) {}
  HeaderWaitQueue(const HeaderWaitQueue&) = delete;
  HeaderWaitQueue& operator=(const HeaderWaitQueue&) = delete;

  // Makes `w` a waiter, closing this worker's oldest waiters while the agent has `cap` or more.
  // False (counted as refused) when the agent is at the cap and this worker has none to close.
  bool enter(HeaderWaiter& w, int64_t cap);
  // `w` is no longer waiting (its head came, or it closed). Harmless when it was not.
  void leave(HeaderWaiter& w);
  size_t size() const { return size_; }

 private:
  std::atomic<int64_t>& agent_waiting_;
  Stats& stats_;
  HeaderWaiter* oldest_ = nullptr;
  HeaderWaiter* newest_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ferry::agent
