// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "hbone/authority.h"

#include <optional>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ferry::hbone {
namespace {

absl::Status bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("authority '", text, "': ", why));
}

}  // namespace

absl::StatusOr<Authority> Authority::parse(absl::string_view text) {
  if (text.size() > 64) {
    return bad(text.substr(0, 64), "longer than any ip:port");
  }
  size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) {
    return bad(text, "no port (expected ip:port or [ipv6]:port)");
  }
  absl::string_view host = text.substr(0, colon);
  absl::string_view port_text = text.substr(colon + 1);
  uint32_t port = 0;
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(port_text, &port) || port == 0 || port > 65535) {
    return bad(text, "port must be a number in 1..65535");
  }
  // A literal only: IPv6 in brackets, IPv4 without. A bracketed IPv4-mapped literal stays IPv6
  // (the family the peer asked for).
  const bool bracketed = !host.empty() && host.front() == '[';
  if (bracketed && (host.size() < 3 || host.back() != ']')) {
    return bad(text, "unbalanced brackets around an IPv6 address");
  }
  absl::string_view literal = bracketed ? host.substr(1, host.size() - 2) : host;
  std::optional<net::IpAddress> ip =
      net::IpAddress::parse(std::string_view(literal.data(), literal.size()));
  if (!ip || (literal.find(':') != absl::string_view::npos) != bracketed) {
    return bad(text, bracketed ? "not a literal IPv6 address"
                               : "host is not a literal IPv4 address or bracketed IPv6 address");
  }
  Authority out;
  out.family = bracketed ? AF_INET6 : AF_INET;
  out.addr = bracketed ? ip->addr16() : ip->bytes;
  out.port = static_cast<uint16_t>(port);
  return out;
}

net::SocketAddress Authority::address() const {
  net::IpAddress ip;
  ip.v4 = family == AF_INET;
  ip.bytes = addr;
  return net::SocketAddress::from(ip, port);
}

std::string Authority::toString() const {
  return address().str();
}

socklen_t Authority::toSockaddr(sockaddr_storage* out) const {
  net::SocketAddress sa = address();
  *out = sa.storage;
  return sa.len;
}

Authority Authority::fromSockaddr(const sockaddr* sa) {
  // Keeps the family as given (no IPv4-mapped folding), as a connect(2) target must.
  net::SocketAddress given = net::SocketAddress::copyOf(sa);
  Authority out;
  out.family = given.family() == AF_INET6 ? AF_INET6 : AF_INET;
  out.addr = given.address().bytes;
  out.port = given.port();
  return out;
}

}  // namespace ferry::hbone
