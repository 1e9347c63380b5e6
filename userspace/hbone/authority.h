// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// HBONE's `:authority`: the original destination as a literal "ip:port" ("[v6]:port").
// Names are refused: the tunnel carries addresses the capture already resolved.

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "net/socket_address.h"

namespace ferry::hbone {

struct Authority {
  int family = AF_INET;            // AF_INET or AF_INET6
  std::array<uint8_t, 16> addr{};  // network order; the first 4 bytes for IPv4
  uint16_t port = 0;               // host order

  static absl::StatusOr<Authority> parse(absl::string_view text);
  // Canonical text ("10.0.0.1:80", "[fd00::1]:80"): what a client sends and logs show.
  std::string toString() const;
  net::SocketAddress address() const;
  // For connect(2); returns the length to pass.
  socklen_t toSockaddr(sockaddr_storage* out) const;
  static Authority fromSockaddr(const sockaddr* sa);

  friend bool operator==(const Authority&, const Authority&) = default;
};

}  // namespace ferry::hbone
