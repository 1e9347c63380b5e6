// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// IP addresses and CIDR blocks, the one parser every part uses (policy ipBlocks, mesh CIDRs,
// HBONE authorities, sockets). IPv4-mapped IPv6 addresses are folded to IPv4 so that a
// dual-stack socket's "::ffff:10.0.0.1" matches the block "10.0.0.0/8".

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ferry::net {

// 16 bytes with IPv4 as IPv4-mapped: the normal form of the BPF maps (bpf/include/ferry_abi.h).
using Addr16 = std::array<uint8_t, 16>;

struct IpAddress {
  std::array<uint8_t, 16> bytes{};  // IPv4 uses the first 4 bytes
  bool v4 = false;

  static std::optional<IpAddress> parse(std::string_view text);
  static IpAddress fromAddr16(const Addr16& addr);
  Addr16 addr16() const;
  std::string str() const;
  bool operator==(const IpAddress&) const = default;
};

struct Cidr {
  IpAddress base;  // host bits cleared
  uint8_t prefix_len = 0;

  // "10.0.0.0/8", "fd00::/64", or a bare address (a /32 or /128). Host bits set below the
  // prefix are cleared, as Istio does.
  static absl::StatusOr<Cidr> parse(std::string_view text);
  // "address/length" only, and host bits past the prefix are an error: for configuration,
  // where "10.0.0.1/8" is almost always a typo for something else.
  static absl::StatusOr<Cidr> parseExact(std::string_view text);
  bool contains(const IpAddress& ip) const;
  // The prefix length over the 128-bit normal form (IPv4 lengths plus 96).
  uint32_t prefixLen128() const { return base.v4 ? 96u + prefix_len : prefix_len; }
  std::string str() const;
};

}  // namespace ferry::net
