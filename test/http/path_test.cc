// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "http/path.h"

#include <catch2/catch.hpp>

namespace ferry::http {
namespace {

TEST_CASE("path normalization, default options (decode and merge slashes)", "[path]") {
  struct Row {
    const char* in;
    const char* out;  // nullptr: refused
  };
  const Row rows[] = {
      {"/", "/"},
      {"/a/b", "/a/b"},
      {"/a/./b", "/a/b"},
      {"/a/../b", "/b"},
      {"/../../b", "/b"},
      {"/a/..", "/"},
      {"/a/.", "/a/"},
      {"/a/b/", "/a/b/"},
      {"//a///b", "/a/b"},
      {"/a//../b", "/b"},
      {"/%61dmin", "/admin"},
      {"/%2e%2e/admin", "/admin"},
      {"/%2E/admin", "/admin"},
      {"/a%2fb", "/a/b"},
      {"/a%5Cb", "/a/b"},
      {"/a%2F..%2Fadmin", "/admin"},
      {"\\admin", "/admin"},
      {"/a\\..\\admin", "/admin"},
      {"/%7e%7E", "/~~"},
      {"/a%3ab", "/a%3Ab"},
      {"/a%20b", "/a%20b"},
      {"/a%2ab", "/a%2Ab"},
      {"/%252F", "/%252F"},
      {"/a;b/c;d", "/a;b/c;d"},
      {"/public/..;/admin", nullptr},
      {"/.;x/admin", nullptr},
      {"/%2e%2e;/admin", nullptr},
      {"/a:b@c!$&'()*+,;=", "/a:b@c!$&'()*+,;="},
      {"/a%", nullptr},
      {"/a%2", nullptr},
      {"/a%zz", nullptr},
      {"/a%00b", nullptr},
      {"/a#b", nullptr},
      {"/a b", nullptr},
      {"/a\"b", nullptr},
      {"/a<b", nullptr},
      {"/caf\xc3\xa9", nullptr},
      {"a/b", nullptr},
      {"", nullptr},
  };
  for (const Row& row : rows) {
    INFO(row.in);
    auto got = normalizePath(row.in, PathOptions{});
    if (row.out == nullptr) {
      CHECK_FALSE(got.ok());
    } else {
      REQUIRE(got.ok());
      CHECK(*got == row.out);
    }
  }
}

TEST_CASE("path normalization, the other escaped-slash and merge options", "[path]") {
  PathOptions keep{EscapedSlashes::kKeep, false};
  CHECK(*normalizePath("/a%2fb", keep) == "/a%2Fb");
  CHECK(*normalizePath("/a%5cb", keep) == "/a%5Cb");
  CHECK(*normalizePath("//admin", keep) == "//admin");
  CHECK(*normalizePath("/a/..//admin", keep) == "//admin");
  PathOptions reject{EscapedSlashes::kReject, true};
  auto r = normalizePath("/a%2Fb", reject);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "encoded slash (%2F or %5C) in path");
  CHECK(*normalizePath("/a%2Eb", reject) == "/a.b");
}

TEST_CASE("request-target forms", "[path]") {
  PathOptions o;
  auto t = parseRequestTarget("GET", "/a/../b?x=1&y=%2F", o);
  REQUIRE(t.ok());
  CHECK(t->form == RequestTarget::Form::kOrigin);
  CHECK(t->path == "/b");
  CHECK(t->query == "x=1&y=%2F");
  CHECK(t->forwarded() == "/b?x=1&y=%2F");

  t = parseRequestTarget("GET", "http://Example.com:80//admin?q", o);
  REQUIRE(t.ok());
  CHECK(t->form == RequestTarget::Form::kAbsolute);
  CHECK(t->authority == "Example.com:80");
  CHECK(t->forwarded() == "/admin?q");

  t = parseRequestTarget("GET", "http://h", o);
  REQUIRE(t.ok());
  CHECK(t->forwarded() == "/");

  t = parseRequestTarget("CONNECT", "10.0.0.1:443", o);
  REQUIRE(t.ok());
  CHECK(t->form == RequestTarget::Form::kAuthority);
  CHECK(t->forwarded() == "10.0.0.1:443");
  CHECK(parseRequestTarget("CONNECT", "[fd00::1]:443", o).ok());

  t = parseRequestTarget("OPTIONS", "*", o);
  REQUIRE(t.ok());
  CHECK(t->forwarded() == "*");

  const std::pair<const char*, const char*> refused[] = {
      {"GET", "*"},
      {"CONNECT", "/x"},
      {"CONNECT", "host"},
      {"CONNECT", "user@host:443"},
      {"CONNECT", "host:44a"},
      {"GET", "host:443"},
      {"GET", "ftp://h/x"},
      {"GET", "http://user@h/x"},
      {"GET", "http:///x"},
      {"GET", "http://h<>/x"},
      {"GET", "/a?b c"},
      {"GET", "/a?b#c"},
  };
  for (auto [method, target] : refused) {
    INFO(method << " " << target);
    CHECK_FALSE(parseRequestTarget(method, target, o).ok());
  }
}

}  // namespace
}  // namespace ferry::http
