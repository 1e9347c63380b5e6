// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Drives an HboneConnection over a real non-blocking socket, as the agent's event loop will:
// read into networkIn(), write from networkOut(). Test-only and deliberately minimal.

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hbone/connection.h"

namespace ferry::hbone::testing {

inline void setNonBlocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Returns false when the connection is over (EOF, socket error or HBONE failure).
inline bool pumpSocket(int fd, HboneConnection& conn, absl::Status* status) {
  while (true) {
    absl::Span<uint8_t> space = conn.networkIn().prepare(64 * 1024);
    ssize_t n = ::recv(fd, space.data(), space.size(), 0);
    if (n > 0) {
      conn.networkIn().commit(static_cast<size_t>(n));
      if (absl::Status s = conn.onNetworkInput(); !s.ok()) {
        *status = s;
      }
      continue;
    }
    if (n == 0) {
      conn.onNetworkEof();
      return false;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return false;
    }
    break;
  }
  while (!conn.networkOut().empty()) {
    ssize_t n = ::send(fd, conn.networkOut().data(), conn.networkOut().size(), MSG_NOSIGNAL);
    if (n > 0) {
      conn.networkOut().consume(static_cast<size_t>(n));
      if (absl::Status s = conn.onNetworkOutputDrained(); !s.ok()) {
        *status = s;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    }
    return false;
  }
  return status->ok() && !conn.finished();
}

}  // namespace ferry::hbone::testing
