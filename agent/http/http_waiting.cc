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
    if (oldest_ == nullptr) {
      stats_.inc(stats_.http_headers_refused);
      return false;
    }
    HeaderWaiter* oldest = oldest_;
    leave(*oldest);
    stats_.inc(stats_.http_headers_evicted);
    oldest->evictForNewer();
    now = agent_waiting_.load(std::memory_order_relaxed);
  }
  w.older_ = newest_;
  w.newer_ = nullptr;
  (newest_ != nullptr ? newest_->newer_ : oldest_) = &w;
  newest_ = &w;
  ++size_;
  w.waiting_ = true;
  stats_.inc(stats_.http_awaiting_headers);
  return true;
}

void HeaderWaitQueue::leave(HeaderWaiter& w) {
  if (!w.waiting_) {
    return;
  }
  (w.older_ != nullptr ? w.older_->newer_ : oldest_) = w.newer_;
  (w.newer_ != nullptr ? w.newer_->older_ : newest_) = w.older_;
  w.older_ = w.newer_ = nullptr;
  --size_;
  w.waiting_ = false;
  agent_waiting_.fetch_sub(1, std::memory_order_relaxed);
  stats_.inc(stats_.http_awaiting_headers, -1);
}

}  // namespace ferry::agent
