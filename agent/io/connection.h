// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// One non-blocking stream socket on a worker's event loop (issue 20 point 2): the one place
// that calls recv()/send() for it, keeps the bytes the peer has not taken yet, and tells epoll
// only what changed (EPOLLIN while its owner wants bytes, EPOLLOUT while bytes wait). The
// owner gets the socket's events through `on_events`, decides what to read, and queues what to
// send; EAGAIN and EINTR never reach it.
//
// Relays (tcp_relay, the HBONE tunnel and bridge, the HTTP inbound) read straight into their own
// buffers and send straight from them (read()/write()/writeFrom(): no copy through the
// connection), pause reading for backpressure (want(false, ...)), and half-close with
// shutdownWrite(). A socket that wants nothing leaves the epoll set when it hangs up (epoll
// reports HUP whatever the interest, which would spin the loop) and rejoins on the next want().
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
#include "net/byte_buffer.h"

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

  // Registers the socket with the loop: EPOLLIN when `read`, EPOLLOUT when `write` (the owner
  // holds bytes for the socket, or a connect is in progress) or queued bytes wait.
  absl::Status watch(bool read, bool write = false);
  // As watch(), for a watched socket; epoll hears only of a change.
  void want(bool read, bool write = false);

  // One recv() of at most `room` bytes into `buf`. None, and kAgain, while the socket is known
  // drained: a short read or EAGAIN took all it had, it is in the epoll set with EPOLLIN, and
  // epoll has reported no input since (owners pass over all their ends on any event; each such
  // pass cost a recv() that only heard EAGAIN, bench/README.md). Level-triggered: bytes that
  // come later, or are there when EPOLLIN is wanted again, are reported on the next round.
  ReadResult read(char* buf, size_t room);
  // Reads into `buf`'s room until the socket has nothing more for now or `buf` is full (kAgain),
  // the peer's FIN (kEof) or an error (kError). Stops at a short read: no recv() just to hear
  // EAGAIN.
  ReadStatus fill(net::ByteBuffer& buf);

  // Sends from the caller's memory, no copy: queued bytes first, then as much of `bytes` as the
  // socket takes. How many of `bytes` went (fewer than `n`: the socket is full, wait for
  // EPOLLOUT), or -1 when the peer is gone.
  ssize_t write(const void* bytes, size_t n);
  // write() of `buf`'s bytes, consuming what went. False when the peer is gone.
  bool writeFrom(net::ByteBuffer& buf);
  // shutdown(SHUT_WR) once (FIN after what was sent); queued bytes must have gone first.
  void shutdownWrite();
  bool writeShut() const { return write_shut_; }

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
  bool registered_ = false;  // in the epoll set (a hung-up socket wanting nothing leaves it)
  bool write_shut_ = false;
  bool readable_ = true;  // false: drained since epoll last reported input (see read())
  uint32_t interest_ = 0;
  std::string out_;
  size_t out_off_ = 0;
  bool owned_ = false;  // out_ was given whole (queueOwned()): freed once sent
};

}  // namespace ferry::agent
