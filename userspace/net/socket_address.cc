// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "net/socket_address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ferry::net {

absl::StatusOr<SocketAddress> SocketAddress::parse(const std::string& ip, uint16_t port) {
  std::optional<IpAddress> address = IpAddress::parse(ip);
  if (!address) {
    return absl::InvalidArgumentError(absl::StrCat("\"", ip, "\" is not an IP address"));
  }
  return from(*address, port);
}

SocketAddress SocketAddress::from(const IpAddress& ip, uint16_t port) {
  SocketAddress out;
  if (ip.v4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, ip.bytes.data(), 4);
    out.len = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    std::memcpy(&sin6->sin6_addr, ip.bytes.data(), 16);
    out.len = sizeof(sockaddr_in6);
  }
  return out;
}

SocketAddress SocketAddress::fromSockaddr(const sockaddr* sa, socklen_t len) {
  if (sa->sa_family == AF_INET6 &&
      IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr)) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    IpAddress v4;
    v4.v4 = true;
    std::memcpy(v4.bytes.data(), &sin6->sin6_addr.s6_addr[12], 4);
    return from(v4, ntohs(sin6->sin6_port));
  }
  SocketAddress out;
  out.len = static_cast<socklen_t>(std::min<size_t>(len, sizeof(out.storage)));
  std::memcpy(&out.storage, sa, out.len);
  return out;
}

SocketAddress SocketAddress::copyOf(const sockaddr* sa) {
  SocketAddress out;
  out.len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  std::memcpy(&out.storage, sa, out.len);
  return out;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
}

IpAddress SocketAddress::address() const {
  IpAddress out;
  if (family() == AF_INET) {
    out.v4 = true;
    std::memcpy(out.bytes.data(), &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, 4);
  } else if (family() == AF_INET6) {
    std::memcpy(out.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, 16);
  }
  return out;
}

std::string SocketAddress::ip() const {
  if (family() != AF_INET && family() != AF_INET6) {
    return "";
  }
  return address().str();
}

std::string SocketAddress::str() const {
  return family() == AF_INET6 ? absl::StrCat("[", ip(), "]:", port())
                              : absl::StrCat(ip(), ":", port());
}

}  // namespace ferry::net
