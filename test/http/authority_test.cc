// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The one authority function the HTTP/1 filter, the HTTP/2 filter and the routed outbound path
// share: its normal form, and which authority an HTTP/1 request has.
#include "http/authority.h"

#include <catch2/catch.hpp>

namespace ferry::http {
namespace {

TEST_CASE("authority normal form", "[http][authority]") {
  struct Row {
    const char* in;
    const char* out;  // nullptr: refused
  };
  const Row rows[] = {
      {"svc", "svc"},
      {"Admin.Example", "admin.example"},
      {"admin.example.", "admin.example"},
      {"admin.example:", "admin.example"},
      {"admin.example.:", "admin.example"},
      {"ADMIN.example.:8080", "admin.example:8080"},
      {"admin.example:80", "admin.example:80"},  // default ports are kept (authority.h)
      {"admin.example:0080", "admin.example:80"},
      {"admin.example:0", "admin.example:0"},
      {"10.0.0.1:443", "10.0.0.1:443"},
      {"[FD00::1]:8080", "[fd00::1]:8080"},
      {"[fd00::1]:", "[fd00::1]"},
      {"admin.example..", nullptr},
      {".", nullptr},
      {"admin.example:65536", nullptr},
      {"admin.example:123456", nullptr},
      {"admin.example:8o", nullptr},
      {"adm%69n.example", nullptr},
      {"user@admin.example", nullptr},
      {"admin.example/x", nullptr},
      {"", nullptr},
      {":80", nullptr},
      {"[fd00::1", nullptr},
      {"[fd00::1].", nullptr},
  };
  for (const Row& row : rows) {
    INFO("authority '" << row.in << "'");
    auto got = normalizeAuthority(row.in);
    if (row.out == nullptr) {
      CHECK_FALSE(got.ok());
    } else {
      REQUIRE(got.ok());
      CHECK(*got == row.out);
      auto again = normalizeAuthority(*got);  // a fixed point
      REQUIRE(again.ok());
      CHECK(*again == *got);
    }
  }
}

TEST_CASE("an HTTP/1 request's authority: the target's wins over Host, none is refused",
          "[http][authority]") {
  struct Row {
    const char* name;
    std::string request;
    const char* authority;  // nullptr: refused
  };
  const Row rows[] = {
      {"origin-form: Host", "GET /x HTTP/1.1\r\nHost: Svc.\r\n\r\n", "svc"},
      {"absolute-form wins over Host", "GET http://Other:80/x HTTP/1.1\r\nHost: svc\r\n\r\n",
       "other:80"},
      {"CONNECT target wins over Host",
       "CONNECT denied.example:80 HTTP/1.1\r\nHost: harmless.example\r\n\r\n", "denied.example:80"},
      {"HTTP/1.0 absolute-form without Host", "GET http://svc/x HTTP/1.0\r\n\r\n", "svc"},
      {"HTTP/1.0 without Host", "GET /x HTTP/1.0\r\n\r\n", nullptr},
      {"Host with an empty label", "GET /x HTTP/1.1\r\nHost: a..\r\n\r\n", nullptr},
  };
  for (const Row& row : rows) {
    INFO(row.name);
    Http1Parser parser(Http1Parser::Kind::kRequest);
    std::string_view in = row.request;
    REQUIRE(parser.next(in).type == Http1Parser::Event::Type::kHead);
    const MessageHead& head = parser.head();
    auto target = parseRequestTarget(head.method, head.target, PathOptions{});
    REQUIRE(target.ok());
    auto got = requestAuthority(head, *target);
    if (row.authority == nullptr) {
      CHECK_FALSE(got.ok());
    } else {
      REQUIRE(got.ok());
      CHECK(*got == row.authority);
    }
  }
}

TEST_CASE("forwarded fields: one Host holding the authority, first", "[http][authority]") {
  const Header received[] = {{"X-A", "1"}, {"host", "Evil"}, {"X-B", "2"}, {"HOST", "evil2"}};
  std::vector<Header> out;
  fieldsWithAuthority(received, "svc", out);
  REQUIRE(out.size() == 3);
  CHECK(out[0].name == "Host");
  CHECK(out[0].value == "svc");
  CHECK(out[1].name == "X-A");
  CHECK(out[2].name == "X-B");
}

TEST_CASE("a mirrored request's authority gets -shadow after the host, as Envoy's",
          "[http][authority]") {
  struct Row {
    const char* authority;
    const char* shadow;
  };
  const Row rows[] = {
      {"web", "web-shadow"},
      {"web:80", "web-shadow:80"},
      {"web.default.svc.cluster.local:8080", "web.default.svc.cluster.local-shadow:8080"},
      {"10.96.0.30", "10.96.0.30-shadow"},
      {"10.96.0.30:80", "10.96.0.30-shadow:80"},
      {"[fd00::1]", "[fd00::1]-shadow"},
      {"[fd00::1]:80", "[fd00::1]-shadow:80"},
  };
  for (const Row& row : rows) {
    INFO(row.authority);
    CHECK(shadowAuthority(row.authority) == row.shadow);
  }
}

}  // namespace
}  // namespace ferry::http
