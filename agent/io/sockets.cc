// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/io/sockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/log.h"

namespace ferry::agent {
namespace {
int g_host_netns = -1;

bool isV4Mapped(const in6_addr& a) {
  return IN6_IS_ADDR_V4MAPPED(&a);
}
}  // namespace

absl::StatusOr<SocketAddress> SocketAddress::parse(const std::string& ip, uint16_t port) {
  SocketAddress out;
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, ip.c_str(), &v4) == 1) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr = v4;
    out.len = sizeof(sockaddr_in);
    return out;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &v6) == 1) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = v6;
    out.len = sizeof(sockaddr_in6);
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat("\"", ip, "\" is not an IP address"));
}

SocketAddress SocketAddress::fromSockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress out;
  // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; the mesh thinks in plain IPv4.
  if (sa->sa_family == AF_INET6 &&
      isV4Mapped(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr)) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage);
    sin->sin_family = AF_INET;
    sin->sin_port = sin6->sin6_port;
    std::memcpy(&sin->sin_addr, &sin6->sin6_addr.s6_addr[12], 4);
    out.len = sizeof(sockaddr_in);
    return out;
  }
  std::memcpy(&out.storage, sa, len);
  out.len = len;
  return out;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
}

std::string SocketAddress::ip() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof(buf));
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf,
              sizeof(buf));
  }
  return buf;
}

std::string SocketAddress::str() const {
  return family() == AF_INET6 ? absl::StrCat("[", ip(), "]:", port())
                              : absl::StrCat(ip(), ":", port());
}

absl::StatusOr<NetnsHandle> NetnsHandle::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("open network namespace ", path));
  }
  return NetnsHandle(fd);
}

NetnsHandle& NetnsHandle::operator=(NetnsHandle&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

NetnsHandle::~NetnsHandle() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

absl::Status rememberHostNetns() {
  if (g_host_netns >= 0) {
    return absl::OkStatus();
  }
  g_host_netns = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (g_host_netns < 0) {
    return absl::ErrnoToStatus(errno, "open /proc/self/ns/net");
  }
  return absl::OkStatus();
}

absl::StatusOr<int> tcpSocketIn(const NetnsHandle& netns, int family, uint32_t mark) {
  if (netns.valid()) {
    if (g_host_netns < 0) {
      return absl::FailedPreconditionError("rememberHostNetns() was not called");
    }
    if (::setns(netns.fd(), CLONE_NEWNET) != 0) {
      return absl::ErrnoToStatus(errno, "setns into pod network namespace");
    }
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int saved = errno;
  if (netns.valid() && ::setns(g_host_netns, CLONE_NEWNET) != 0) {
    // A worker left inside a pod's namespace would send later traffic from the wrong place.
    LOG_ERROR("cannot return to the host network namespace: ", std::strerror(errno));
    std::abort();
  }
  if (fd < 0) {
    return absl::ErrnoToStatus(saved, "socket");
  }
  if (mark != 0 && ::setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0) {
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

absl::StatusOr<int> listenIn(const NetnsHandle& netns, uint16_t port, uint32_t mark) {
  auto fd = tcpSocketIn(netns, AF_INET6, mark);
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
