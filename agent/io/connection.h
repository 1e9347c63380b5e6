// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// One non-blocking stream socket on a worker's event loop (issue 20 point 2): the one place
// that calls recv()/send() for it, keeps the bytes the peer has not taken yet, and tells epoll
// only what changed (EPOLLIN while its owner wants bytes, EPOLLOUT while bytes wait). The
// owner gets the socket's events through `on_events`, decides what to read, and queues what to
// send; EAGAIN and EINTR never reach it.
//
// Lifetime: an event for the socket may still be in the loop's current batch when the owner is
// done with it, so a Connection that leaves before its owner is released (release(): the
// descriptor goes on, e.g. back to a pool) or closed, then destroyed through deleteLater; once
// released or closed it forwards no event.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "agent/io/event_loop.h"

namespace ferry::agent {

class Connection final : public EventHandler, public Deferred {
 public:
  enum class ReadStatus { kData, kAgain, kEof, kError };
  struct ReadResult {
    ReadStatus status = ReadStatus::kAgain;
    size_t bytes = 0;  // kData only
  };

  Connection(EventLoop& loop, int fd, std::function<void(uint32_t)> on_events)
      : loop_(loop), fd_(fd), on_events_(std::move(on_events)) {}
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_; }
  bool open() const { return fd_ >= 0; }

  // Registers the socket with the loop: EPOLLIN when `read`, EPOLLOUT when bytes wait.
  absl::Status watch(bool read);
  // EPOLLIN when `read`, EPOLLOUT while bytes wait; epoll hears only of a change.
  void want(bool read);

  // One recv() of at most `room` bytes into `buf`.
  ReadResult read(char* buf, size_t room);

  // Queues `bytes` behind those waiting (nothing is sent until flush()).
  void queue(std::string_view bytes) { out_.append(bytes); }
  // As queue(), for a buffer handed over: taken whole when nothing waits (no copy), and its memory
  // freed once sent.
  void queueOwned(std::string bytes);
  // Sends what the socket takes. False when the peer is gone (any error but EAGAIN/EINTR).
  bool flush();
  size_t pending() const { return out_.size() - out_off_; }

  // Leaves the loop and hands the descriptor on (no longer owned; the queued bytes are dropped).
  int release();
  // Leaves the loop and closes: cleanly, or with a reset (RST) when `reset`.
  void close(bool reset);

  void onEvents(uint32_t events) override;

 private:
  EventLoop& loop_;
  int fd_;
  std::function<void(uint32_t)> on_events_;
  bool watched_ = false;
  uint32_t interest_ = 0;
  std::string out_;
  size_t out_off_ = 0;
  bool owned_ = false;  // out_ was given whole (queueOwned()): freed once sent
};

}  // namespace ferry::agent
