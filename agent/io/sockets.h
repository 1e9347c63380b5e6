// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Socket plumbing of the data path: non-blocking TCP sockets created inside a pod's network
// namespace (kept open as a net::Netns per pod), listeners. Addresses and namespace entry are
// userspace/net's.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "net/netns.h"
#include "net/socket_address.h"

namespace ferry::agent {

using net::Netns;
using net::SocketAddress;

// Makes the data path's sockets inside pods' network namespaces: the thread enters the pod's,
// creates the socket and returns to the agent's own namespace (remembered here), and every
// socket carries the agent's SO_MARK (0: none). One per agent, owned by it and handed to the
// rooms that open sockets (listeners, outbound, inbound, HBONE client).
class PodSockets {
 public:
  // Remembers the calling thread's namespace as the agent's: call at start-up, before any
  // thread changes namespace.
  static absl::StatusOr<PodSockets> open(uint32_t mark);
  // Without a namespace to return to: only sockets in the caller's own (an invalid Netns) can
  // be made (tests).
  explicit PodSockets(uint32_t mark = 0) : mark_(mark) {}

  // A non-blocking, close-on-exec TCP socket of `family` created inside `netns` (invalid:
  // host), with TCP_NODELAY (listeners pass it on to the sockets they accept).
  absl::StatusOr<int> tcpSocketIn(const Netns& netns, int family) const;
  // Any socket(domain, type | SOCK_CLOEXEC, protocol) created inside `netns`, as it comes.
  absl::StatusOr<int> socketIn(const Netns& netns, int domain, int type, int protocol) const;

  // A dual-stack ([::], IPV6_V6ONLY off) listener on `port` inside `netns`, with SO_REUSEPORT
  // so every worker can have its own listener on the same port and the kernel spreads
  // connections over them (no accept lock shared by workers).
  absl::StatusOr<int> listenIn(const Netns& netns, uint16_t port) const;

 private:
  PodSockets(Netns host, uint32_t mark) : host_(std::move(host)), mark_(mark) {}

  Netns host_;  // the agent's own namespace, where every thread returns
  uint32_t mark_ = 0;
};

// Starts a non-blocking connect; OK when it completed or is in progress.
absl::Status startConnect(int fd, const SocketAddress& to);
// The pending error of a socket (after a non-blocking connect), as errno.
int socketError(int fd);
void closeWithReset(int fd);  // SO_LINGER 0: the peer sees RST, not a clean FIN

}  // namespace ferry::agent
