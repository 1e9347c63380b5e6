// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/io/connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "agent/io/sockets.h"

namespace ferry::agent {

Connection::~Connection() {
  if (fd_ >= 0) {
    close(false);
  }
}

absl::Status Connection::watch(bool read, bool write) {
  interest_ = (read ? EPOLLIN : 0u) | (write || pending() > 0 ? EPOLLOUT : 0u);
  absl::Status s = loop_.add(fd_, interest_, this);
  watched_ = registered_ = s.ok();
  return s;
}

void Connection::want(bool read, bool write) {
  const uint32_t want = (read ? EPOLLIN : 0u) | (write || pending() > 0 ? EPOLLOUT : 0u);
  if (!watched_) {
    return;
  }
  if (!registered_) {
    if (want != 0) {
      interest_ = want;
      registered_ = loop_.add(fd_, want, this).ok();
    }
    return;
  }
  if (want != interest_) {
    interest_ = want;
    (void)loop_.modify(fd_, want, this);
  }
}

Connection::ReadResult Connection::read(char* buf, size_t room) {
  if (!readable_ && registered_ && (interest_ & EPOLLIN) != 0) {
    return {ReadStatus::kAgain, 0};  // drained, and epoll will say when bytes come
  }
  ssize_t n = ::recv(fd_, buf, room, 0);
  if (n > 0) {
    if (static_cast<size_t>(n) < room) {
      readable_ = false;  // a short read took all the socket had
    }
    return {ReadStatus::kData, static_cast<size_t>(n)};
  }
  if (n == 0) {
    return {ReadStatus::kEof, 0};
  }
  if (errno == EAGAIN) {
    readable_ = false;
  }
  return {errno == EAGAIN || errno == EINTR ? ReadStatus::kAgain : ReadStatus::kError, 0};
}

Connection::ReadStatus Connection::fill(net::ByteBuffer& buf) {
  while (true) {
    absl::Span<uint8_t> room = buf.writable();
    if (room.empty()) {
      return ReadStatus::kAgain;  // full: the owner stops reading (backpressure)
    }
    ReadResult r = read(reinterpret_cast<char*>(room.data()), room.size());
    if (r.status != ReadStatus::kData) {
      return r.status;
    }
    buf.commitRead(r.bytes);
    if (r.bytes < room.size()) {
      return ReadStatus::kAgain;  // drained for now
    }
  }
}

ssize_t Connection::write(const void* bytes, size_t n) {
  if (!flush()) {
    return -1;
  }
  if (pending() > 0) {
    return 0;
  }
  const char* p = static_cast<const char*>(bytes);
  size_t done = 0;
  while (done < n) {
    ssize_t sent = ::send(fd_, p + done, n - done, MSG_NOSIGNAL);
    if (sent > 0) {
      done += static_cast<size_t>(sent);
      continue;
    }
    if (sent < 0 && (errno == EAGAIN || errno == EINTR)) {
      break;
    }
    return -1;
  }
  return static_cast<ssize_t>(done);
}

bool Connection::writeFrom(net::ByteBuffer& buf) {
  ssize_t sent = write(buf.data(), buf.size());
  if (sent < 0) {
    return false;
  }
  buf.consume(static_cast<size_t>(sent));
  return true;
}

void Connection::shutdownWrite() {
  if (!write_shut_ && fd_ >= 0) {
    ::shutdown(fd_, SHUT_WR);
    write_shut_ = true;
  }
}

void Connection::queueOwned(std::string bytes) {
  if (pending() == 0) {
    out_ = std::move(bytes);
    out_off_ = 0;
    owned_ = true;
    return;
  }
  out_.append(bytes);
}

bool Connection::flush() {
  while (out_off_ < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
    if (n > 0) {
      out_off_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      return true;
    }
    return false;
  }
  if (owned_) {
    std::string().swap(out_);  // a buffer given whole: its memory goes back now
    owned_ = false;
  }
  out_.clear();
  out_off_ = 0;
  return true;
}

int Connection::release() {
  if (registered_) {
    loop_.remove(fd_);
  }
  watched_ = registered_ = false;
  out_.clear();
  out_off_ = 0;
  return std::exchange(fd_, -1);
}

void Connection::close(bool reset) {
  const int fd = release();
  if (fd >= 0) {
    reset ? closeWithReset(fd) : (void)::close(fd);
  }
}

void Connection::onEvents(uint32_t events) {
  if (fd_ < 0) {
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    readable_ = true;
  }
  on_events_(events);
  // epoll reports HUP whatever the interest set: a socket that wants nothing leaves the set, or
  // the loop would spin until its owner wants something again (want() brings it back).
  if ((events & EPOLLHUP) && fd_ >= 0 && interest_ == 0 && registered_) {
    loop_.remove(fd_);
    registered_ = false;
  }
}

}  // namespace ferry::agent
