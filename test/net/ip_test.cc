// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The one address and CIDR parser, with the union of the rows the four former parsers had
// (policy ipBlocks, the BPF loader's mesh CIDRs, HBONE authorities, agent sockets).
#include "net/ip.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "net/socket_address.h"

namespace ferry::net {
namespace {

TEST_CASE("addresses: literals accepted and their canonical text", "[net][ip]") {
  struct Row {
    std::string text;
    bool v4;
    const char* canonical;
  };
  for (const Row& r : std::vector<Row>{
           {"10.244.1.5", true, "10.244.1.5"},
           {"0.0.0.0", true, "0.0.0.0"},
           {"255.255.255.255", true, "255.255.255.255"},
           {"fd00:244:0::2:11", false, "fd00:244::2:11"},
           {"::1", false, "::1"},
           {"::", false, "::"},
           {"FD00::A", false, "fd00::a"},
           {"0001::1", false, "1::1"},
           // IPv4-mapped IPv6 folds to IPv4: a dual-stack socket's peer matches "10.0.0.0/8".
           {"::ffff:10.244.1.5", true, "10.244.1.5"},
           {"::ffff:a00:1", true, "10.0.0.1"},
           // IPv4-compatible (deprecated) stays IPv6.
           {"::10.0.0.1", false, "::10.0.0.1"},
       }) {
    INFO(r.text);
    std::optional<IpAddress> ip = IpAddress::parse(r.text);
    REQUIRE(ip.has_value());
    CHECK(ip->v4 == r.v4);
    CHECK(ip->str() == r.canonical);
    CHECK(IpAddress::fromAddr16(ip->addr16()) == *ip);
  }
}

TEST_CASE("addresses: leading zeros, short forms and garbage are refused", "[net][ip]") {
  for (const std::string& bad : std::vector<std::string>{"",
                                                         " ",
                                                         "10.0.0",
                                                         "10.0.0.0.1",
                                                         "010.0.0.1",
                                                         "10.0.0.01",
                                                         "1.2.3.4 ",
                                                         " 1.2.3.4",
                                                         "1.2.3.256",
                                                         "0x0a.0.0.1",
                                                         "10.0.0.1/32",
                                                         "1.2.3.-4",
                                                         "+1.2.3.4",
                                                         "10..0.1",
                                                         "fd00::1%eth0",
                                                         "fd00::1::2",
                                                         "fd00:::1",
                                                         "fd00::g",
                                                         "00000::1",
                                                         "[fd00::1]",
                                                         "::ffff:010.0.0.1",
                                                         "1:2:3:4:5:6:7:8:9",
                                                         std::string("1.2.3.4\0junk", 11),
                                                         std::string(64, '1'),
                                                         "localhost",
                                                         "x"}) {
    INFO(bad);
    CHECK_FALSE(IpAddress::parse(bad).has_value());
  }
}

TEST_CASE("CIDR parsing and containment", "[net][ip]") {
  auto c = Cidr::parse("10.244.1.77/24");
  REQUIRE(c.ok());
  CHECK(c->str() == "10.244.1.0/24");
  CHECK(c->contains(*IpAddress::parse("10.244.1.255")));
  CHECK_FALSE(c->contains(*IpAddress::parse("10.244.2.0")));
  CHECK(c->contains(*IpAddress::parse("::ffff:10.244.1.5")));
  CHECK_FALSE(c->contains(*IpAddress::parse("fd00::1")));
  CHECK(Cidr::parse("0.0.0.0/0")->contains(*IpAddress::parse("1.2.3.4")));
  CHECK(Cidr::parse("fd00:244::/31")->contains(*IpAddress::parse("fd00:245::1")));
  CHECK_FALSE(Cidr::parse("fd00:244::/32")->contains(*IpAddress::parse("fd00:245::1")));
  CHECK(Cidr::parse("::ffff:10.0.0.0/104")->contains(*IpAddress::parse("10.1.2.3")));
  CHECK(Cidr::parse("10.0.0.1")->prefix_len == 32);
  CHECK(Cidr::parse("fd00::1")->prefix_len == 128);
  for (const char* bad :
       {"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8",
        "10.0.0", "fd00::/129", "::ffff:10.0.0.0/95", "x", "10.0.0.0/ 8", "10.0.0.0/8 ",
        "10.0.0.0/0x8", "010.0.0.0/8", "10.0.0.0/1000", "fd00::/64x"}) {
    INFO(bad);
    CHECK_FALSE(Cidr::parse(bad).ok());
  }
}

TEST_CASE("CIDR in the 128-bit normal form of the BPF maps", "[net][ip]") {
  struct Row {
    const char* text;
    uint32_t len128;
  };
  for (const Row& r : std::vector<Row>{{"10.244.0.0/16", 112},
                                       {"fd00:244::/48", 48},
                                       {"0.0.0.0/0", 96},
                                       {"::/0", 0},
                                       {"::ffff:10.0.0.0/104", 104},
                                       {"10.96.0.10/32", 128}}) {
    INFO(r.text);
    absl::StatusOr<Cidr> cidr = Cidr::parseExact(r.text);
    REQUIRE(cidr.ok());
    CHECK(cidr->prefixLen128() == r.len128);
  }
  Addr16 mapped = IpAddress::parse("10.244.0.0")->addr16();
  CHECK(mapped[10] == 0xff);
  CHECK(mapped[11] == 0xff);
  CHECK(mapped[12] == 10);
}

TEST_CASE("exact CIDRs (configuration) refuse host bits and bare addresses", "[net][ip]") {
  struct Row {
    const char* text;
    const char* why;
  };
  for (const Row& r : std::vector<Row>{
           {"10.244.0.1/16", "bits set past the prefix"},
           {"fd00:244::1/48", "bits set past the prefix"},
           {"10.244.0.0", "not a CIDR"},
           {"10.244.0.0/33", "bad prefix length"},
           {"fd00::/129", "bad prefix length"},
           {"10.244.0/16", "not an IP address"},
       }) {
    INFO(r.text);
    absl::StatusOr<Cidr> cidr = Cidr::parseExact(r.text);
    REQUIRE_FALSE(cidr.ok());
    CHECK_THAT(std::string(cidr.status().message()), Catch::Contains(r.why));
  }
}

TEST_CASE("socket addresses: text, family, port and IPv4-mapped folding", "[net][ip]") {
  struct Row {
    const char* ip;
    uint16_t port;
    int family;
    const char* text;
  };
  for (const Row& r : std::vector<Row>{{"10.0.0.1", 80, AF_INET, "10.0.0.1:80"},
                                       {"fd00::1", 443, AF_INET6, "[fd00::1]:443"},
                                       {"::ffff:10.0.0.1", 8080, AF_INET, "10.0.0.1:8080"}}) {
    INFO(r.ip);
    absl::StatusOr<SocketAddress> sa = SocketAddress::parse(r.ip, r.port);
    REQUIRE(sa.ok());
    CHECK(sa->family() == r.family);
    CHECK(sa->port() == r.port);
    CHECK(sa->str() == r.text);
    CHECK(SocketAddress::fromSockaddr(sa->sa(), sa->len).str() == r.text);
  }
  CHECK_FALSE(SocketAddress::parse("10.0.0.1:80", 80).ok());
  CHECK_FALSE(SocketAddress::parse("localhost", 80).ok());

  // A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d: folded by fromSockaddr, kept by
  // copyOf.
  sockaddr_in6 six{};
  six.sin6_family = AF_INET6;
  six.sin6_port = htons(15001);
  six.sin6_addr.s6_addr[10] = 0xff;
  six.sin6_addr.s6_addr[11] = 0xff;
  six.sin6_addr.s6_addr[12] = 10;
  six.sin6_addr.s6_addr[15] = 7;
  const auto* raw = reinterpret_cast<const sockaddr*>(&six);
  CHECK(SocketAddress::fromSockaddr(raw, sizeof(six)).str() == "10.0.0.7:15001");
  CHECK(SocketAddress::copyOf(raw).str() == "[::ffff:10.0.0.7]:15001");
}

}  // namespace
}  // namespace ferry::net
