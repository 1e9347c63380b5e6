// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

// Circuit breaking on upstream connections, for one backend cluster and shared by every worker
// of an agent: at most `max_connections` connections carrying a request at once, and at most
// `max_pending_requests` requests waiting for one. With HTTP/1.1 (one request per connection)
// that bounds the requests the backend sees from this agent; idle keep-alive connections are
// the caller's business (the agent's pools close them after an idle timeout). A request beyond both
// is refused at once (Envoy's upstream overflow: 503, flag UO). A freed slot goes to the longest
// waiter.
namespace ferry::routing {

class ConnectionLimiter {
 public:
  class Waiter;
  using Ticket = std::shared_ptr<Waiter>;

  enum class Admit {
    kConnect,   // a slot is held: open the connection, release() when it closes
    kWait,      // queued: `granted` runs once a slot is handed over, then claim() it
    kOverflow,  // refused
  };
  struct Admission {
    Admit admit = Admit::kOverflow;
    Ticket ticket;  // kWait only
  };

  ConnectionLimiter(uint32_t max_connections, uint32_t max_pending_requests)
      : max_connections_(max_connections), max_pending_(max_pending_requests) {}

  // `granted` runs on the thread that frees the slot, with no lock held: it should only pass
  // the news on (the agent posts to the waiter's event loop).
  Admission acquire(std::function<void()> granted);
  // A connection closed: its slot goes to the first waiter, or becomes free.
  void release();
  // The waiter takes the slot it was granted. True at most once per ticket, and never after
  // cancel(); the caller then owns the slot (release() it with the connection).
  bool claim(const Ticket& ticket);
  // The waiter gives up (answered, timed out, client gone): leaves the queue, or passes on a
  // slot it was granted but had not claimed. No effect after claim().
  void cancel(const Ticket& ticket);

  bool atLimit() const;
  bool hasWaiters() const;
  uint32_t connections() const;
  size_t waiting() const;
  uint64_t overflows() const;

 private:
  // Hands the slot of a closed connection on; returns the callback to run unlocked.
  std::function<void()> passOnLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const uint32_t max_connections_;
  const uint32_t max_pending_;
  mutable absl::Mutex mu_;
  uint32_t connections_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Ticket> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t overflows_ ABSL_GUARDED_BY(mu_) = 0;
};

class ConnectionLimiter::Waiter {
 private:
  friend class ConnectionLimiter;
  enum class State { kQueued, kGranted, kClaimed, kCancelled };
  State state = State::kQueued;  // guarded by the limiter's mutex
  std::function<void()> granted;
};

}  // namespace ferry::routing
