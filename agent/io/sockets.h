// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Socket plumbing: addresses, non-blocking TCP sockets created inside a pod's network
// namespace, listeners. The netns helpers here keep the namespace open as a file descriptor
// (one per pod), because the data path creates a socket in a pod namespace per connection and
// re-opening /run/netns/<pod> every time would cost a path lookup and an fd churn each.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace ferry::agent {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t len = 0;

  static absl::StatusOr<SocketAddress> parse(const std::string& ip, uint16_t port);
  static SocketAddress fromSockaddr(const sockaddr* sa, socklen_t len);
  int family() const { return storage.ss_family; }
  uint16_t port() const;
  std::string ip() const;   // canonical text, IPv4-mapped IPv6 shown as IPv4
  std::string str() const;  // "10.0.0.1:80", "[fd00::1]:80"
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// An open network namespace.
class NetnsHandle {
 public:
  static absl::StatusOr<NetnsHandle> open(const std::string& path);
  NetnsHandle() = default;
  NetnsHandle(NetnsHandle&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  NetnsHandle& operator=(NetnsHandle&& other) noexcept;
  ~NetnsHandle();
  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  explicit NetnsHandle(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Records the agent's own namespace; call once at start-up before any thread changes namespace.
absl::Status rememberHostNetns();

// A non-blocking, close-on-exec TCP socket of `family` created inside `netns` (invalid: host),
// with TCP_NODELAY (listeners pass it on to the sockets they accept).
absl::StatusOr<int> tcpSocketIn(const NetnsHandle& netns, int family, uint32_t mark);

// A dual-stack ([::], IPV6_V6ONLY off) listener on `port` inside `netns`, with SO_REUSEPORT so
// every worker can have its own listener on the same port and the kernel spreads connections
// over them (no accept lock shared by workers).
absl::StatusOr<int> listenIn(const NetnsHandle& netns, uint16_t port, uint32_t mark);

// Starts a non-blocking connect; OK when it completed or is in progress.
absl::Status startConnect(int fd, const SocketAddress& to);
// The pending error of a socket (after a non-blocking connect), as errno.
int socketError(int fd);
void closeWithReset(int fd);  // SO_LINGER 0: the peer sees RST, not a clean FIN

}  // namespace ferry::agent
