// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Ending another process's TCP connection from outside it: sock_diag's SOCK_DESTROY (the
// kernel's tcp_abort: the socket is closed with ECONNABORTED and the peer gets a RST). The
// agent uses it to cut a same-node direct connection whose policy no longer allows it; the
// socket must be looked up in its own network namespace, so the netlink socket is made there.

#include <cstdint>

#include "absl/status/status.h"
#include "net/ip.h"

namespace ferry::net {

// One TCP socket as sock_diag names it: from its own point of view.
struct TcpSocketId {
  int family = 0;  // AF_INET or AF_INET6 (an IPv4-mapped AF_INET6 socket is found too)
  Addr16 local{};  // IPv4-mapped for IPv4
  uint16_t local_port = 0;
  Addr16 remote{};
  uint16_t remote_port = 0;
  uint64_t cookie = 0;  // 0: any socket with these addresses
};

// Destroys the socket through `diag_fd`, a NETLINK_SOCK_DIAG socket of the socket's namespace.
// NotFound when there is no such socket (it closed meanwhile); Unimplemented on a kernel
// without CONFIG_INET_DIAG_DESTROY.
absl::Status destroyTcpSocket(int diag_fd, const TcpSocketId& id);

// OK when this kernel can destroy sockets (asks it to destroy one that does not exist, in the
// caller's namespace: NotFound means it could have); Unimplemented or the error otherwise.
absl::Status probeSocketDestroy();

}  // namespace ferry::net
