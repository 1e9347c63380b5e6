// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Socket plumbing of the data path: non-blocking TCP sockets created inside a pod's network
// namespace (kept open as a net::Netns per pod), listeners. Addresses and namespace entry are
// userspace/net's.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "net/netns.h"
#include "net/socket_address.h"

namespace ferry::agent {

using net::Netns;
using net::SocketAddress;

// Records the agent's own namespace; call once at start-up before any thread changes namespace.
absl::Status rememberHostNetns();

// A non-blocking, close-on-exec TCP socket of `family` created inside `netns` (invalid: host),
// with TCP_NODELAY (listeners pass it on to the sockets they accept).
absl::StatusOr<int> tcpSocketIn(const Netns& netns, int family, uint32_t mark);

// A dual-stack ([::], IPV6_V6ONLY off) listener on `port` inside `netns`, with SO_REUSEPORT so
// every worker can have its own listener on the same port and the kernel spreads connections
// over them (no accept lock shared by workers).
absl::StatusOr<int> listenIn(const Netns& netns, uint16_t port, uint32_t mark);

// Starts a non-blocking connect; OK when it completed or is in progress.
absl::Status startConnect(int fd, const SocketAddress& to);
// The pending error of a socket (after a non-blocking connect), as errno.
int socketError(int fd);
void closeWithReset(int fd);  // SO_LINGER 0: the peer sees RST, not a clean FIN

}  // namespace ferry::agent
