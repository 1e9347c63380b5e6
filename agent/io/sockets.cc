// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/io/sockets.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "log/log.h"

namespace ferry::agent {

absl::StatusOr<PodSockets> PodSockets::open(uint32_t mark) {
  absl::StatusOr<Netns> host = Netns::open("/proc/self/ns/net");
  if (!host.ok()) {
    return host.status();
  }
  return PodSockets(std::move(*host), mark);
}

absl::StatusOr<int> PodSockets::socketIn(const Netns& netns, int domain, int type,
                                         int protocol) const {
  std::optional<net::ScopedNetns> inside;
  if (netns.valid()) {
    if (!host_.valid()) {
      return absl::FailedPreconditionError(
          "no namespace to return to: PodSockets::open() was not used");
    }
    absl::StatusOr<net::ScopedNetns> entered = net::ScopedNetns::enter(netns, host_);
    if (!entered.ok()) {
      return entered.status();
    }
    inside.emplace(std::move(*entered));
  }
  int fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
  int saved = errno;
  inside.reset();  // back in the host namespace
  if (fd < 0) {
    return absl::ErrnoToStatus(saved, "socket");
  }
  return fd;
}

absl::StatusOr<int> PodSockets::tcpSocketIn(const Netns& netns, int family) const {
  absl::StatusOr<int> made = socketIn(netns, family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (!made.ok()) {
    return made.status();
  }
  int fd = *made;
  int saved = 0;
  if (mark_ != 0 && ::setsockopt(fd, SOL_SOCKET, SO_MARK, &mark_, sizeof(mark_)) != 0) {
    saved = errno;
    ::close(fd);
    return absl::ErrnoToStatus(saved, "setsockopt SO_MARK");
  }
  // The agent writes whole messages (a TLS record, a relayed read) and never benefits from
  // Nagle: with it, a small write behind unacknowledged data waits for the peer's delayed ACK
  // (up to 40 ms), which is what made the tail latency. Set here, it covers the upstream
  // sockets and the listeners, whose accepted sockets inherit it.
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    saved = errno;
    ::close(fd);
    return absl::ErrnoToStatus(saved, "setsockopt TCP_NODELAY");
  }
  return fd;
}

absl::StatusOr<int> PodSockets::listenIn(const Netns& netns, uint16_t port) const {
  auto fd = tcpSocketIn(netns, AF_INET6);
  if (!fd.ok()) {
    return fd.status();
  }
  int one = 1, zero = 0;
  ::setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  ::setsockopt(*fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  ::setsockopt(*fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_port = htons(port);
  any.sin6_addr = in6addr_any;
  if (::bind(*fd, reinterpret_cast<sockaddr*>(&any), sizeof(any)) != 0 ||
      ::listen(*fd, 1024) != 0) {
    int saved = errno;
    ::close(*fd);
    return absl::ErrnoToStatus(saved, absl::StrCat("listen on port ", port));
  }
  return *fd;
}

absl::Status startConnect(int fd, const SocketAddress& to) {
  if (::connect(fd, to.sa(), to.len) == 0 || errno == EINPROGRESS) {
    return absl::OkStatus();
  }
  return absl::ErrnoToStatus(errno, absl::StrCat("connect to ", to.str()));
}

int socketError(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

void closeWithReset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  ::close(fd);
}

}  // namespace ferry::agent
