// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "net/ip.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ferry::net {
namespace {

constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

std::string quoted(std::string_view text) {
  return absl::StrCat("'", absl::string_view(text.data(), text.size()), "'");
}

bool allDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string and refuses anything longer than an IPv6 literal;
  // an embedded NUL would end the text early and let trailing garbage through.
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN ||
      text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  IpAddress ip;
  if (inet_pton(AF_INET, buf, ip.bytes.data()) == 1) {
    ip.v4 = true;
    return ip;
  }
  if (inet_pton(AF_INET6, buf, ip.bytes.data()) != 1) {
    return std::nullopt;
  }
  Addr16 all = ip.bytes;
  return fromAddr16(all);
}

IpAddress IpAddress::fromAddr16(const Addr16& addr) {
  IpAddress ip;
  if (std::memcmp(addr.data(), kMappedPrefix, sizeof(kMappedPrefix)) == 0) {
    std::memcpy(ip.bytes.data(), addr.data() + 12, 4);
    ip.v4 = true;
  } else {
    ip.bytes = addr;
  }
  return ip;
}

Addr16 IpAddress::addr16() const {
  if (!v4) {
    return bytes;
  }
  Addr16 out{};
  std::memcpy(out.data(), kMappedPrefix, sizeof(kMappedPrefix));
  std::memcpy(out.data() + 12, bytes.data(), 4);
  return out;
}

std::string IpAddress::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof(buf));
  return buf;
}

absl::StatusOr<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  std::string_view addr = text.substr(0, slash);
  auto ip = IpAddress::parse(addr);
  if (!ip) {
    return absl::InvalidArgumentError(quoted(text) + " is not an IP address or CIDR");
  }
  // A mapped IPv6 literal folds to IPv4, but its prefix length still counts IPv6 bits.
  bool written_as_v6 = addr.find(':') != std::string_view::npos;
  int max_len = written_as_v6 ? 128 : 32;
  int len = ip->v4 ? 32 : 128;
  if (slash != std::string_view::npos) {
    std::string_view len_text = text.substr(slash + 1);
    if (!allDigits(len_text) || len_text.size() > 3 ||
        std::from_chars(len_text.data(), len_text.data() + len_text.size(), len).ec !=
            std::errc() ||
        len > max_len) {
      return absl::InvalidArgumentError(
          absl::StrCat(quoted(text), " has a bad prefix length (0 to ", max_len, ")"));
    }
    if (written_as_v6 && ip->v4) {
      if (len < 96) {
        return absl::InvalidArgumentError(
            quoted(text) + " mixes IPv4-mapped and native IPv6 addresses (prefix below /96)");
      }
      len -= 96;
    }
  }
  Cidr cidr;
  cidr.base = *ip;
  cidr.prefix_len = static_cast<uint8_t>(len);
  size_t total = ip->v4 ? 4 : 16;
  for (size_t i = 0; i < total; ++i) {
    int bits_here = len - static_cast<int>(i) * 8;
    if (bits_here >= 8) {
      continue;
    }
    uint8_t mask = bits_here <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits_here));
    cidr.base.bytes[i] &= mask;
  }
  return cidr;
}

absl::StatusOr<Cidr> Cidr::parseExact(std::string_view text) {
  if (text.find('/') == std::string_view::npos) {
    return absl::InvalidArgumentError(quoted(text) + " is not a CIDR (address/prefix-length)");
  }
  absl::StatusOr<Cidr> cidr = parse(text);
  if (!cidr.ok()) {
    return cidr;
  }
  if (cidr->base != *IpAddress::parse(text.substr(0, text.find('/')))) {
    return absl::InvalidArgumentError(quoted(text) +
                                      ": the address has bits set past the prefix length");
  }
  return cidr;
}

bool Cidr::contains(const IpAddress& ip) const {
  if (ip.v4 != base.v4) {
    return false;
  }
  int full = prefix_len / 8;
  if (std::memcmp(ip.bytes.data(), base.bytes.data(), full) != 0) {
    return false;
  }
  int rest = prefix_len % 8;
  if (rest == 0) {
    return true;
  }
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (ip.bytes[full] & mask) == base.bytes[full];
}

std::string Cidr::str() const {
  return absl::StrCat(base.str(), "/", prefix_len);
}

}  // namespace ferry::net
