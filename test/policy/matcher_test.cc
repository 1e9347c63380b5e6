// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The building blocks: Istio's string forms, CIDRs, and the `when` vocabulary.
#include <catch2/catch.hpp>

#include "policy/attributes.h"
#include "policy/string_match.h"

namespace ferry::policy {
namespace {

TEST_CASE("Istio string forms", "[policy][match]") {
  struct Row {
    const char* pattern;
    const char* value;
    bool match;
  };
  for (const Row& r : std::vector<Row>{
           {"/admin", "/admin", true},
           {"/admin", "/admin/", false},
           {"/admin*", "/admin", true},
           {"/admin*", "/administrator", true},
           {"*.png", "/a/b.png", true},
           {"*.png", "/a/b.PNG", false},
           {"*", "x", true},
           {"*", "", false},
           {"**", "*", true},
           {"*a*", "xa*", true},  // leading '*' wins
       }) {
    INFO(r.pattern << " vs " << r.value);
    CHECK(StringMatcher::fromPattern(r.pattern).matches(r.value) == r.match);
  }
}

TEST_CASE("host and principal matchers", "[policy][match]") {
  auto h = StringMatcher::host("web.demo");
  CHECK(h.matches("WEB.demo"));
  CHECK(h.matches("web.demo:80"));
  CHECK_FALSE(h.matches("web.demo:"));
  CHECK_FALSE(h.matches("web.demo:8x"));
  CHECK_FALSE(h.matches("web.demo.evil"));
  CHECK(StringMatcher::host("*.demo").matches("A.DEMO"));
  CHECK(StringMatcher::host("web.*").matches("WEB.x"));

  CHECK(StringMatcher::principal("cluster.local/ns/a/sa/b")
            .matches("spiffe://cluster.local/ns/a/sa/b"));
  CHECK_FALSE(
      StringMatcher::principal("cluster.local/ns/a/sa/b").matches("cluster.local/ns/a/sa/b"));
  CHECK(StringMatcher::principal("spiffe://td/ns/a/sa/b").matches("spiffe://td/ns/a/sa/b"));
  CHECK(StringMatcher::principal("td/ns/a/*").matches("spiffe://td/ns/a/sa/x"));
  CHECK_FALSE(StringMatcher::principal("td/ns/a/*").matches("spiffe://td/ns/ab/sa/x"));
  CHECK(StringMatcher::principal("*/sa/b").matches("spiffe://td/ns/a/sa/b"));
}

TEST_CASE("patterns with a '*' inside are refused", "[policy][match]") {
  CHECK(checkPattern("a*").ok());
  CHECK(checkPattern("*a").ok());
  CHECK(checkPattern("*").ok());
  CHECK_FALSE(checkPattern("").ok());
  CHECK_FALSE(checkPattern("a*b").ok());
  CHECK_FALSE(checkPattern("*a*").ok());
  CHECK_FALSE(checkPattern("**a").ok());
}

TEST_CASE("when keys and their values", "[policy][attributes]") {
  auto header = parseConditionKey("request.headers[X-Token]");
  REQUIRE(header.ok());
  CHECK(header->kind == AttributeKind::kRequestHeader);
  CHECK(header->header == "x-token");
  CHECK_FALSE(isL4Attribute(header->kind));
  CHECK(isL4Attribute(parseConditionKey("source.principal")->kind));
  CHECK_FALSE(isL4Attribute(parseConditionKey("remote.ip")->kind));
  CHECK(parseConditionKey("request.auth.claims[groups]").ok());
  CHECK_FALSE(parseConditionKey("request.headers[]").ok());
  CHECK_FALSE(parseConditionKey("request.headers[a b]").ok());
  CHECK_FALSE(parseConditionKey("experimental.envoy.filters.x").ok());
  CHECK_FALSE(checkConditionValue(*parseConditionKey("destination.port"), "0").ok());
  CHECK(checkConditionValue(*parseConditionKey("destination.ip"), "fd00::/8").ok());
  CHECK(parsePort("65535").value() == 65535);
  CHECK_FALSE(parsePort("065536").ok());
  CHECK_FALSE(parsePort("+80").ok());
}

}  // namespace
}  // namespace ferry::policy
