// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// IP addresses and CIDR blocks as AuthorizationPolicy uses them (ipBlocks, source.ip,
// destination.ip). IPv4-mapped IPv6 addresses are folded to IPv4 so that a dual-stack socket's
// "::ffff:10.0.0.1" matches the block "10.0.0.0/8".

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ferry::policy {

struct IpAddress {
  std::array<uint8_t, 16> bytes{};  // IPv4 uses the first 4 bytes
  bool v4 = false;

  static std::optional<IpAddress> parse(std::string_view text);
  std::string str() const;
  bool operator==(const IpAddress&) const = default;
};

struct Cidr {
  IpAddress base;  // host bits cleared
  uint8_t prefix_len = 0;

  // "10.0.0.0/8", "fd00::/64", or a bare address (a /32 or /128). Host bits set below the
  // prefix are cleared, as Istio does.
  static absl::StatusOr<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& ip) const;
  std::string str() const;
};

}  // namespace ferry::policy
