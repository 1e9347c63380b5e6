// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "hbone/authority.h"

#include <arpa/inet.h>

#include <cstring>

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
  Authority out;
  out.port = static_cast<uint16_t>(port);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return bad(text, "unbalanced brackets around an IPv6 address");
    }
    std::string v6(host.substr(1, host.size() - 2));
    if (inet_pton(AF_INET6, v6.c_str(), out.addr.data()) != 1) {
      return bad(text, "not a literal IPv6 address");
    }
    out.family = AF_INET6;
    return out;
  }
  std::string v4(host);
  if (inet_pton(AF_INET, v4.c_str(), out.addr.data()) != 1) {
    return bad(text, "host is not a literal IPv4 address or bracketed IPv6 address");
  }
  out.family = AF_INET;
  return out;
}

std::string Authority::toString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, addr.data(), buf, sizeof(buf));
  if (family == AF_INET6) {
    return absl::StrCat("[", buf, "]:", port);
  }
  return absl::StrCat(buf, ":", port);
}

socklen_t Authority::toSockaddr(sockaddr_storage* out) const {
  std::memset(out, 0, sizeof(*out));
  if (family == AF_INET6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(out);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    std::memcpy(&sin6->sin6_addr, addr.data(), 16);
    return sizeof(sockaddr_in6);
  }
  auto* sin = reinterpret_cast<sockaddr_in*>(out);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  std::memcpy(&sin->sin_addr, addr.data(), 4);
  return sizeof(sockaddr_in);
}

Authority Authority::fromSockaddr(const sockaddr* sa) {
  Authority out;
  if (sa->sa_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    out.family = AF_INET6;
    std::memcpy(out.addr.data(), &sin6->sin6_addr, 16);
    out.port = ntohs(sin6->sin6_port);
  } else {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    out.family = AF_INET;
    std::memcpy(out.addr.data(), &sin->sin_addr, 4);
    out.port = ntohs(sin->sin_port);
  }
  return out;
}

}  // namespace ferry::hbone
