// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A socket address (IPv4 or IPv6 with a port) as connect(2) and accept(2) take it.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "net/ip.h"

namespace ferry::net {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t len = 0;

  static absl::StatusOr<SocketAddress> parse(const std::string& ip, uint16_t port);
  static SocketAddress from(const IpAddress& ip, uint16_t port);
  // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; this folds them to plain IPv4.
  static SocketAddress fromSockaddr(const sockaddr* sa, socklen_t len);
  // An AF_INET or AF_INET6 sockaddr as given, IPv4-mapped IPv6 kept as IPv6.
  static SocketAddress copyOf(const sockaddr* sa);
  int family() const { return storage.ss_family; }
  uint16_t port() const;
  IpAddress address() const;
  std::string ip() const;   // canonical text, IPv4-mapped IPv6 shown as IPv4
  std::string str() const;  // "10.0.0.1:80", "[fd00::1]:80"
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

}  // namespace ferry::net
