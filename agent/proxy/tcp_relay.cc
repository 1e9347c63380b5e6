// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/proxy/tcp_relay.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace ferry::agent {

TcpRelay* TcpRelay::start(EventLoop& loop, int a, int b, bool b_connecting, size_t max_buffer,
                          uint32_t connect_timeout_ms, DoneCallback done) {
  auto* relay = new TcpRelay(loop, a, b, max_buffer, std::move(done));
  relay->connecting_ = b_connecting;
  if (b_connecting) {
    relay->connect_timer_ = loop.addTimer(std::chrono::milliseconds(connect_timeout_ms), [relay] {
      relay->connect_timer_ = 0;
      relay->connect_failed_ = true;
      relay->finish(true);
    });
  }
  relay->a_.interest = b_connecting ? 0u : static_cast<uint32_t>(EPOLLIN);
  relay->b_.interest = static_cast<uint32_t>(b_connecting ? EPOLLOUT : EPOLLIN);
  (void)loop.add(a, relay->a_.interest, &relay->a_);
  (void)loop.add(b, relay->b_.interest, &relay->b_);
  return relay;
}

TcpRelay::TcpRelay(EventLoop& loop, int a, int b, size_t max_buffer, DoneCallback done)
    : loop_(loop), a_(max_buffer), b_(max_buffer), on_done_(std::move(done)) {
  a_.relay = this;
  b_.relay = this;
  a_.fd = a;
  b_.fd = b;
}

TcpRelay::~TcpRelay() {
  if (connect_timer_ != 0) {
    loop_.cancelTimer(connect_timer_);
  }
}

void TcpRelay::onSide(Side& side, uint32_t events) {
  if (done_) {
    return;
  }
  if (connecting_ && &side == &b_) {
    int err = socketError(b_.fd);
    if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
      connect_failed_ = true;
      finish(true);
      return;
    }
    connecting_ = false;
    loop_.cancelTimer(connect_timer_);
    connect_timer_ = 0;
  }
  if (events & EPOLLERR) {
    finish(true);
    return;
  }
  // epoll reports HUP whatever the interest set; a side that wants nothing must leave the set
  // or the loop would spin until the other side drains.
  if ((events & EPOLLHUP) && side.interest == 0) {
    loop_.remove(side.fd);
    side.registered = false;
  }
  pump();
}

// Moves as much as the sockets allow in both directions, then sets interest to match.
void TcpRelay::pump() {
  for (int round = 0; round < 2 && !done_; ++round) {
    for (Side* from : {&a_, &b_}) {
      Side& to = peer(*from);
      if (!readFrom(*from) || !writeTo(to, *from)) {
        finish(true);
        return;
      }
    }
  }
  bool a_done = a_.read_eof && a_.in.empty() && b_.shut_write;
  bool b_done = b_.read_eof && b_.in.empty() && a_.shut_write;
  if (a_done && b_done) {
    finish(false);
    return;
  }
  updateInterest(a_);
  updateInterest(b_);
}

bool TcpRelay::readFrom(Side& from) {
  while (!from.read_eof && !from.in.full()) {
    auto [ptr, room] = from.in.writable();
    ssize_t n = ::recv(from.fd, ptr, room, 0);
    if (n > 0) {
      from.in.commit(static_cast<size_t>(n));
      if (static_cast<size_t>(n) < room) {
        break;  // socket drained for now
      }
      continue;
    }
    if (n == 0) {
      from.read_eof = true;
      break;
    }
    if (errno == EAGAIN || errno == EINTR) {
      break;
    }
    return false;
  }
  return true;
}

bool TcpRelay::writeTo(Side& to, Side& from) {
  while (!from.in.empty()) {
    ssize_t n = ::send(to.fd, from.in.data(), from.in.readable(), MSG_NOSIGNAL);
    if (n > 0) {
      from.in.consume(static_cast<size_t>(n));
      from.moved += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      return true;
    }
    return false;
  }
  from.in.shrink();
  if (from.read_eof && !to.shut_write) {
    ::shutdown(to.fd, SHUT_WR);
    to.shut_write = true;
  }
  return true;
}

void TcpRelay::updateInterest(Side& side) {
  Side& other = peer(side);
  uint32_t want = 0;
  if (!side.read_eof && !side.in.full()) {
    want |= EPOLLIN;
  }
  if (!other.in.empty()) {
    want |= EPOLLOUT;
  }
  if (!side.registered) {
    if (want != 0) {
      side.interest = want;
      side.registered = true;
      (void)loop_.add(side.fd, want, &side);
    }
    return;
  }
  if (want != side.interest) {
    side.interest = want;
    (void)loop_.modify(side.fd, want, &side);
  }
}

void TcpRelay::finish(bool reset) {
  if (done_) {
    return;
  }
  done_ = true;
  for (Side* s : {&a_, &b_}) {
    if (s->registered) {
      loop_.remove(s->fd);
    }
    if (reset) {
      closeWithReset(s->fd);
    } else {
      ::close(s->fd);
    }
    s->fd = -1;
  }
  RelayResult result{a_.moved, b_.moved, connect_failed_, reset};
  if (on_done_) {
    on_done_(result);
  }
  loop_.deleteLater(std::unique_ptr<Deferred>(this));
}

}  // namespace ferry::agent
