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

absl::Status Connection::watch(bool read) {
  interest_ = (read ? EPOLLIN : 0u) | (pending() > 0 ? EPOLLOUT : 0u);
  absl::Status s = loop_.add(fd_, interest_, this);
  watched_ = s.ok();
  return s;
}

void Connection::want(bool read) {
  const uint32_t want = (read ? EPOLLIN : 0u) | (pending() > 0 ? EPOLLOUT : 0u);
  if (watched_ && want != interest_) {
    interest_ = want;
    (void)loop_.modify(fd_, want, this);
  }
}

Connection::ReadResult Connection::read(char* buf, size_t room) {
  ssize_t n = ::recv(fd_, buf, room, 0);
  if (n > 0) {
    return {ReadStatus::kData, static_cast<size_t>(n)};
  }
  if (n == 0) {
    return {ReadStatus::kEof, 0};
  }
  return {errno == EAGAIN || errno == EINTR ? ReadStatus::kAgain : ReadStatus::kError, 0};
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
  if (watched_) {
    loop_.remove(fd_);
    watched_ = false;
  }
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
  if (fd_ >= 0) {
    on_events_(events);
  }
}

}  // namespace ferry::agent
