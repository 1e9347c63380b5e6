// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/http_waiting.h"

namespace ferry::agent {

bool HeaderWaitQueue::enter(HeaderWaiter& w, int64_t cap) {
  if (w.waiting_) {
    return true;
  }
  int64_t now = agent_waiting_.load(std::memory_order_relaxed);
  while (true) {
    if (now < cap) {
      if (agent_waiting_.compare_exchange_weak(now, now + 1, std::memory_order_relaxed)) {
        break;
      }
      continue;  // `now` was reloaded
    }
    if (waiters_.empty()) {
      stats_.inc(stats_.http_headers_refused);
      return false;
    }
    HeaderWaiter* oldest = waiters_.front();
    leave(*oldest);
    stats_.inc(stats_.http_headers_evicted);
    oldest->evictForNewer();
    now = agent_waiting_.load(std::memory_order_relaxed);
  }
  w.position_ = waiters_.insert(waiters_.end(), &w);
  w.waiting_ = true;
  stats_.inc(stats_.http_awaiting_headers);
  return true;
}

void HeaderWaitQueue::leave(HeaderWaiter& w) {
  if (!w.waiting_) {
    return;
  }
  waiters_.erase(w.position_);
  w.waiting_ = false;
  agent_waiting_.fetch_sub(1, std::memory_order_relaxed);
  stats_.inc(stats_.http_awaiting_headers, -1);
}

}  // namespace ferry::agent
