// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// AuthorizationPolicy rows that involve a verified JWT (RequestAuthentication): requestPrincipals
// and request.auth.* conditions, each with the exact decision, with and without a token.
#include "policy_test_util.h"

namespace ferry::policy::testing {
namespace {

struct Row {
  const char* name;
  std::string policies;
  Req req;
  const char* expect;  // Decision::str()
};

const Req::Jwt kAlice{"https://issuer.example/alice",
                      "frontend",
                      {"api", "web"},
                      {{"iss", "https://issuer.example"},
                       {"sub", "alice"},
                       {"groups", "dev"},
                       {"groups", "admins"},
                       {"realm_access][roles", "reader"}}};
const Req::Jwt kBob{"https://issuer.example/bob", "", {"api"}, {{"sub", "bob"}}};

std::string requireJwt(const char* action) {
  return ap("p", action, "[{from: [{source: {requestPrincipals: ['*']}}]}]");
}

std::vector<Row> rows() {
  return {
      {"requestPrincipals *: a request with a token is allowed", requireJwt("ALLOW"),
       Req{.jwt = kAlice}, "allowed by ALLOW policy demo/p rule 0"},
      {"requestPrincipals *: a request without a token is denied", requireJwt("ALLOW"), Req{},
       "denied: no ALLOW policy matched"},
      {"requestPrincipals exact iss/sub",
       ap("p", "ALLOW",
          "[{from: [{source: {requestPrincipals: ['https://issuer.example/alice']}}]}]"),
       Req{.jwt = kAlice}, "allowed by ALLOW policy demo/p rule 0"},
      {"requestPrincipals exact: another subject is denied",
       ap("p", "ALLOW",
          "[{from: [{source: {requestPrincipals: ['https://issuer.example/alice']}}]}]"),
       Req{.jwt = kBob}, "denied: no ALLOW policy matched"},
      {"requestPrincipals prefix (issuer/*)",
       ap("p", "ALLOW", "[{from: [{source: {requestPrincipals: ['https://issuer.example/*']}}]}]"),
       Req{.jwt = kBob}, "allowed by ALLOW policy demo/p rule 0"},
      {"DENY notRequestPrincipals *: a request without a token is denied",
       ap("p", "DENY", "[{from: [{source: {notRequestPrincipals: ['*']}}]}]"), Req{},
       "denied by DENY policy demo/p rule 0"},
      {"DENY notRequestPrincipals *: a request with a token passes",
       ap("p", "DENY", "[{from: [{source: {notRequestPrincipals: ['*']}}]}]"), Req{.jwt = kAlice},
       "allowed: no ALLOW policy applies"},
      {"notRequestPrincipals excludes one subject",
       ap("p", "ALLOW",
          "[{from: [{source: {requestPrincipals: ['*'], notRequestPrincipals: ['*/bob']}}]}]"),
       Req{.jwt = kBob}, "denied: no ALLOW policy matched"},
      {"request.auth.principal condition",
       ap("p", "ALLOW",
          "[{when: [{key: request.auth.principal, values: ['https://issuer.example/alice']}]}]"),
       Req{.jwt = kAlice}, "allowed by ALLOW policy demo/p rule 0"},
      {"request.auth.claims[groups]: any element of a list claim matches",
       ap("p", "ALLOW", "[{when: [{key: 'request.auth.claims[groups]', values: [admins]}]}]"),
       Req{.jwt = kAlice}, "allowed by ALLOW policy demo/p rule 0"},
      {"request.auth.claims[groups]: no element matches",
       ap("p", "ALLOW", "[{when: [{key: 'request.auth.claims[groups]', values: [ops]}]}]"),
       Req{.jwt = kAlice}, "denied: no ALLOW policy matched"},
      {"request.auth.claims notValues: one excluded element is enough to exclude",
       ap("p", "ALLOW", "[{when: [{key: 'request.auth.claims[groups]', notValues: [dev]}]}]"),
       Req{.jwt = kAlice}, "denied: no ALLOW policy matched"},
      {"request.auth.claims absent claim does not match *",
       ap("p", "ALLOW", "[{when: [{key: 'request.auth.claims[groups]', values: ['*']}]}]"),
       Req{.jwt = kBob}, "denied: no ALLOW policy matched"},
      {"nested claim [realm_access][roles]",
       ap("p", "ALLOW",
          "[{when: [{key: 'request.auth.claims[realm_access][roles]', values: [reader]}]}]"),
       Req{.jwt = kAlice}, "allowed by ALLOW policy demo/p rule 0"},
      {"nested claim is not the top-level name",
       ap("p", "ALLOW", "[{when: [{key: 'request.auth.claims[roles]', values: [reader]}]}]"),
       Req{.jwt = kAlice}, "denied: no ALLOW policy matched"},
      {"request.auth.audiences: one of the token's audiences",
       ap("p", "ALLOW", "[{when: [{key: request.auth.audiences, values: [web]}]}]"),
       Req{.jwt = kAlice}, "allowed by ALLOW policy demo/p rule 0"},
      {"request.auth.audiences: none matches",
       ap("p", "ALLOW", "[{when: [{key: request.auth.audiences, values: [billing]}]}]"),
       Req{.jwt = kAlice}, "denied: no ALLOW policy matched"},
      {"request.auth.presenter (azp)",
       ap("p", "ALLOW", "[{when: [{key: request.auth.presenter, values: [frontend]}]}]"),
       Req{.jwt = kAlice}, "allowed by ALLOW policy demo/p rule 0"},
      {"request.auth.presenter absent",
       ap("p", "ALLOW", "[{when: [{key: request.auth.presenter, values: ['*']}]}]"),
       Req{.jwt = kBob}, "denied: no ALLOW policy matched"},
      {"claims without a token: DENY on a claim does not match",
       ap("p", "DENY", "[{when: [{key: 'request.auth.claims[groups]', values: [admins]}]}]"), Req{},
       "allowed: no ALLOW policy applies"},
      {"requestPrincipals with mTLS principal both required",
       ap("p", "ALLOW",
          "[{from: [{source: {principals: [cluster.local/ns/demo/sa/client], "
          "requestPrincipals: ['*']}}]}]"),
       Req{.principal = kAdmin, .jwt = kAlice}, "denied: no ALLOW policy matched"},
  };
}

TEST_CASE("AuthorizationPolicy with request authentication", "[policy][jwt]") {
  auto all = rows();
  REQUIRE(all.size() >= 20);
  for (const auto& row : all) {
    SECTION(row.name) {
      auto snapshot = snapshotOf(row.policies);
      auto built = build(row.req);
      auto rules = snapshot->forWorkload("demo", {{"app", "web"}});
      CHECK(rules.evaluate(built->request).str() == row.expect);
      CHECK(rules.explain(built->request).decision.str() == row.expect);
    }
  }
}

TEST_CASE("request.auth.claims keys are checked", "[policy][jwt]") {
  CHECK(parseConditionKey("request.auth.claims[a][b]")->claim == "a][b");
  CHECK(parseConditionKey("request.auth.claims[groups]")->kind == AttributeKind::kRequestClaim);
  for (const char* bad : {"request.auth.claims[]", "request.auth.claims[a][]",
                          "request.auth.claims[[a]", "request.auth.claims[a]]"}) {
    CAPTURE(bad);
    CHECK_FALSE(parseConditionKey(bad).ok());
  }
}

}  // namespace
}  // namespace ferry::policy::testing
