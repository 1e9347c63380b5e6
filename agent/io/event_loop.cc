// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/io/event_loop.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "log/log.h"

namespace ferry::agent {
namespace {
uint64_t selfId() {
  return static_cast<uint64_t>(pthread_self());
}

// The loop's eventfd, read only when epoll says post() or stop() wrote it (not on every round:
// that was a failed read(2) per round, bench/README.md). What was posted is run at the top of
// the next round.
class WakeHandler : public EventHandler {
 public:
  explicit WakeHandler(int fd) : fd_(fd) {}
  void onEvents(uint32_t) override {
    uint64_t count;
    [[maybe_unused]] ssize_t n = ::read(fd_, &count, sizeof(count));
  }

 private:
  const int fd_;
};
}  // namespace

EventLoop::EventLoop() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    LOG_ERROR("cannot create the event loop: ", std::strerror(errno));
    std::abort();
  }
  waker_ = std::make_unique<WakeHandler>(wake_fd_);
  spare_order_.reserve(kSpareTimers);
  spare_timers_.reserve(kSpareTimers);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = waker_.get();
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
}

EventLoop::~EventLoop() {
  deferred_.clear();
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

absl::Status EventLoop::add(int fd, uint32_t events, EventHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    return absl::ErrnoToStatus(errno, "epoll_ctl add");
  }
  return absl::OkStatus();
}

absl::Status EventLoop::modify(int fd, uint32_t events, EventHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) {
    return absl::ErrnoToStatus(errno, "epoll_ctl mod");
  }
  return absl::OkStatus();
}

void EventLoop::remove(int fd) {
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
}

void EventLoop::deleteLater(std::unique_ptr<Deferred> object) {
  deferred_.push_back(std::move(object));
}

EventLoop::TimerId EventLoop::addTimer(std::chrono::milliseconds after, std::function<void()> fn) {
  TimerId id = next_timer_++;
  auto when = Clock::now() + after;
  if (spare_order_.empty() || spare_timers_.empty()) {
    timers_.emplace(id, std::make_pair(when, std::move(fn)));
    timer_order_.emplace(when, id);
    return id;
  }
  Timers::node_type timer = std::move(spare_timers_.back());
  spare_timers_.pop_back();
  timer.key() = id;
  timer.mapped().first = when;
  timer.mapped().second = std::move(fn);
  timers_.insert(std::move(timer));
  TimerOrder::node_type order = std::move(spare_order_.back());
  spare_order_.pop_back();
  order.key() = when;
  order.mapped() = id;
  timer_order_.insert(std::move(order));
  return id;
}

void EventLoop::cancelTimer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) {
    return;
  }
  auto range = timer_order_.equal_range(it->second.first);
  for (auto o = range.first; o != range.second; ++o) {
    if (o->second == id) {
      recycle(timer_order_.extract(o), timers_.extract(it));
      return;
    }
  }
  timers_.erase(it);
}

void EventLoop::recycle(TimerOrder::node_type order, Timers::node_type timer) {
  timer.mapped().second = nullptr;  // what the function holds goes now, as an erase did
  if (spare_order_.size() < kSpareTimers) {
    spare_order_.push_back(std::move(order));
    spare_timers_.push_back(std::move(timer));
  }
}

void EventLoop::stop() {
  {
    std::lock_guard lock(mu_);
    stop_requested_ = true;
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
}

bool EventLoop::inLoopThread() const {
  return thread_id_.load(std::memory_order_relaxed) == selfId();
}

void EventLoop::drainPosted() {
  std::vector<std::function<void()>> work;
  {
    std::lock_guard lock(mu_);
    work.swap(posted_);
    stopping_ = stop_requested_;
  }
  for (auto& fn : work) {
    fn();
  }
}

int EventLoop::runTimers() {
  while (!timer_order_.empty()) {
    auto first = timer_order_.begin();
    auto now = Clock::now();
    if (first->first > now) {
      auto wait =
          std::chrono::duration_cast<std::chrono::milliseconds>(first->first - now).count() + 1;
      return static_cast<int>(wait);
    }
    TimerId id = first->second;
    auto it = timers_.find(id);
    if (it == timers_.end()) {
      timer_order_.erase(first);
      continue;
    }
    auto fn = std::move(it->second.second);
    recycle(timer_order_.extract(first), timers_.extract(it));
    fn();
  }
  return -1;
}

void EventLoop::runAfterBatch() {
  running_after_batch_.swap(after_batch_);
  for (auto& fn : running_after_batch_) {
    fn();
  }
  running_after_batch_.clear();
}

void EventLoop::run() {
  thread_id_.store(selfId());
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (true) {
    drainPosted();
    if (stopping_) {
      break;
    }
    int timeout = runTimers();
    deferred_.clear();
    if (!after_batch_.empty()) {
      timeout = 0;  // queued since the last round (re-armed, or by timers): poll, then run
    }
    if (before_wait_ != nullptr) {
      before_wait_();
    }
    int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, timeout);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      LOG_ERROR("epoll_wait: ", std::strerror(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      static_cast<EventHandler*>(events[i].data.ptr)->onEvents(events[i].events);
    }
    runAfterBatch();
    deferred_.clear();
  }
  deferred_.clear();
  if (before_wait_ != nullptr) {
    before_wait_();
  }
}

}  // namespace ferry::agent
