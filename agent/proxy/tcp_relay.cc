// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/proxy/tcp_relay.h"

namespace ferry::agent {

TcpRelay* TcpRelay::start(EventLoop& loop, int a, int b, bool b_connecting, RelayLimits limits,
                          DoneCallback done, std::string_view a_to_b, std::string_view b_to_a) {
  auto* relay = new TcpRelay(loop, a, b, limits.max_buffer, std::move(done));
  if (!a_to_b.empty()) {
    relay->a_.in.append(a_to_b.data(), a_to_b.size());
  }
  if (!b_to_a.empty()) {
    relay->b_.in.append(b_to_a.data(), b_to_a.size());
  }
  relay->connecting_ = b_connecting;
  if (b_connecting) {
    relay->connect_timer_ =
        loop.addTimer(std::chrono::milliseconds(limits.connect_timeout_ms), [relay] {
          relay->connect_timer_ = 0;
          relay->connect_failed_ = true;
          relay->finish(true);
        });
  }
  (void)relay->a_.conn.watch(!b_connecting);
  (void)relay->b_.conn.watch(!b_connecting, /*write=*/b_connecting);
  if (!b_connecting && (!a_to_b.empty() || !b_to_a.empty())) {
    relay->pump();  // the preloaded bytes go out now (interest follows what is left)
  }
  return relay;
}

TcpRelay::TcpRelay(EventLoop& loop, int a, int b, size_t max_buffer, DoneCallback done)
    : loop_(loop),
      a_(this, loop, a, max_buffer),
      b_(this, loop, b, max_buffer),
      on_done_(std::move(done)) {}

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
    int err = socketError(b_.conn.fd());
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
  pump();  // a hung-up side wanting nothing leaves the epoll set (Connection::onEvents)
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
  bool a_done = a_.read_eof && a_.in.empty() && b_.conn.writeShut();
  bool b_done = b_.read_eof && b_.in.empty() && a_.conn.writeShut();
  if (a_done && b_done) {
    finish(false);
    return;
  }
  updateInterest(a_);
  updateInterest(b_);
}

bool TcpRelay::readFrom(Side& from) {
  if (from.read_eof) {
    return true;
  }
  Connection::ReadStatus status = from.conn.fill(from.in);
  from.read_eof = status == Connection::ReadStatus::kEof;
  return status != Connection::ReadStatus::kError;
}

bool TcpRelay::writeTo(Side& to, Side& from) {
  if (!from.in.empty()) {
    const size_t before = from.in.size();
    if (!to.conn.writeFrom(from.in)) {
      return false;
    }
    from.moved += before - from.in.size();
    if (!from.in.empty()) {
      return true;  // the socket is full: EPOLLOUT resumes
    }
  }
  from.in.shrinkIfEmpty();
  if (from.read_eof) {
    to.conn.shutdownWrite();
  }
  return true;
}

void TcpRelay::updateInterest(Side& side) {
  side.conn.want(!side.read_eof && !side.in.full(), /*write=*/!peer(side).in.empty());
}

void TcpRelay::finish(bool reset) {
  if (done_) {
    return;
  }
  done_ = true;
  a_.conn.close(reset);
  b_.conn.close(reset);
  RelayResult result{a_.moved, b_.moved, connect_failed_, reset};
  if (on_done_) {
    on_done_(result);
  }
  loop_.deleteLater(std::unique_ptr<Deferred>(this));
}

}  // namespace ferry::agent
