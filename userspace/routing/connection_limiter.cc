// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "routing/connection_limiter.h"

#include <algorithm>
#include <utility>

namespace ferry::routing {

ConnectionLimiter::Admission ConnectionLimiter::acquire(std::function<void()> granted) {
  absl::MutexLock lock(&mu_);
  // Waiters come first: a new request does not jump the queue when a slot was just freed.
  if (connections_ < max_connections_ && queue_.empty()) {
    ++connections_;
    return {.admit = Admit::kConnect};
  }
  if (queue_.size() >= max_pending_) {
    ++overflows_;
    return {.admit = Admit::kOverflow};
  }
  auto ticket = std::make_shared<Waiter>();
  ticket->granted = std::move(granted);
  queue_.push_back(ticket);
  return {.admit = Admit::kWait, .ticket = std::move(ticket)};
}

std::function<void()> ConnectionLimiter::passOnLocked() {
  if (queue_.empty()) {
    if (connections_ > 0) {
      --connections_;
    }
    return nullptr;
  }
  Ticket next = std::move(queue_.front());
  queue_.pop_front();
  next->state = Waiter::State::kGranted;
  return std::move(next->granted);
}

void ConnectionLimiter::release() {
  std::function<void()> granted;
  {
    absl::MutexLock lock(&mu_);
    granted = passOnLocked();
  }
  if (granted) {
    granted();
  }
}

bool ConnectionLimiter::claim(const Ticket& ticket) {
  absl::MutexLock lock(&mu_);
  if (ticket == nullptr || ticket->state != Waiter::State::kGranted) {
    return false;
  }
  ticket->state = Waiter::State::kClaimed;
  return true;
}

void ConnectionLimiter::cancel(const Ticket& ticket) {
  if (ticket == nullptr) {
    return;
  }
  std::function<void()> granted;
  {
    absl::MutexLock lock(&mu_);
    switch (ticket->state) {
      case Waiter::State::kQueued:
        queue_.erase(std::find(queue_.begin(), queue_.end(), ticket));
        ticket->granted = nullptr;
        break;
      case Waiter::State::kGranted:
        granted = passOnLocked();  // the slot it never used
        break;
      case Waiter::State::kClaimed:
      case Waiter::State::kCancelled:
        return;
    }
    ticket->state = Waiter::State::kCancelled;
  }
  if (granted) {
    granted();
  }
}

bool ConnectionLimiter::atLimit() const {
  absl::MutexLock lock(&mu_);
  return connections_ >= max_connections_;
}

bool ConnectionLimiter::hasWaiters() const {
  absl::MutexLock lock(&mu_);
  return !queue_.empty();
}

uint32_t ConnectionLimiter::connections() const {
  absl::MutexLock lock(&mu_);
  return connections_;
}

size_t ConnectionLimiter::waiting() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

uint64_t ConnectionLimiter::overflows() const {
  absl::MutexLock lock(&mu_);
  return overflows_;
}

}  // namespace ferry::routing
