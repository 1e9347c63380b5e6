// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// RequestAuthentication behaviour around verification: where tokens are found, what a missing
// token means, what is forwarded (original token, payload and claim headers), key rotation, keys
// that could not be had, and which rules apply to a workload.
#include <catch2/catch.hpp>

#include "jwt/authenticator.h"
#include "jwt/base64url.h"
#include "token_signer.h"

namespace ferry::jwt::testing {
namespace {

using nlohmann::json;
using Headers = std::vector<std::pair<std::string_view, std::string_view>>;
constexpr int64_t kNow = 1'700'000'000;

const TestKey& key() {
  static const TestKey k(TestKey::Type::kP256, "k1");
  return k;
}

model::JwtRule rule(const std::string& issuer = "iss-a") {
  model::JwtRule r;
  r.issuer = issuer;
  r.jwks = key().jwks();
  return r;
}

std::string token(const std::string& issuer = "iss-a", json extra = json::object()) {
  json c = {{"iss", issuer}, {"sub", "alice"}, {"exp", kNow + 60}};
  c.update(extra);
  return key().sign("ES256", c);
}

Outcome run(const Authenticator& a, const Headers& headers, std::string_view query = "") {
  Outcome out;
  a.authenticate(headers, query, kNow, out);
  return out;
}

bool removes(const Outcome& o, const std::string& name) {
  return std::find(o.remove_headers.begin(), o.remove_headers.end(), name) !=
         o.remove_headers.end();
}

TEST_CASE("a request without a token passes without a request principal", "[jwt]") {
  Authenticator a({rule()});
  std::string t = token();
  std::string basic = "Basic " + t;
  for (const Headers& h : {Headers{}, Headers{{"x-other", "1"}}, Headers{{"authorization", basic}},
                           Headers{{"x-token", t}}}) {
    Outcome out = run(a, h);
    CHECK(out.kind == Outcome::Kind::kNoToken);
    CHECK(out.auth() == nullptr);
    CHECK(out.principal.empty());
  }
}

TEST_CASE("default locations: Authorization Bearer (any case) and access_token", "[jwt]") {
  Authenticator a({rule()});
  std::string bearer = "bearer " + token();
  Outcome out = run(a, {{"AUTHORIZATION", bearer}});
  REQUIRE(out.kind == Outcome::Kind::kValid);
  CHECK(out.principal == "iss-a/alice");
  CHECK(removes(out, "authorization"));  // forwardOriginalToken defaults to false
  out = run(a, {}, "x=1&access_token=" + token() + "&y=2");
  CHECK(out.kind == Outcome::Kind::kValid);
  out = run(a, {}, "access_token=garbage");
  CHECK(out.kind == Outcome::Kind::kInvalid);
}

TEST_CASE("fromHeaders and fromParams replace the default locations", "[jwt]") {
  model::JwtRule r = rule();
  r.from_headers = {{"x-jwt", "Token "}};
  r.from_params = {"jwt"};
  Authenticator a({r});
  std::string t = token();
  std::string bearer = "Bearer " + t;
  CHECK(run(a, {{"authorization", bearer}}).kind == Outcome::Kind::kNoToken);
  CHECK(run(a, {}, "access_token=" + t).kind == Outcome::Kind::kNoToken);
  std::string prefixed = "Token " + t;
  Outcome out = run(a, {{"X-JWT", prefixed}});
  REQUIRE(out.kind == Outcome::Kind::kValid);
  CHECK(removes(out, "x-jwt"));
  CHECK(run(a, {}, "jwt=" + t).kind == Outcome::Kind::kValid);
  CHECK(run(a, {{"x-jwt", t}}).kind == Outcome::Kind::kNoToken);  // prefix missing
}

TEST_CASE("forwardOriginalToken, outputPayloadToHeader and outputClaimToHeaders", "[jwt]") {
  model::JwtRule r = rule();
  r.forward_original_token = true;
  r.output_payload_to_header = "x-jwt-payload";
  r.output_claim_to_headers = {{"x-sub", "sub"}, {"x-tier", "plan.tier"}, {"x-none", "nope"}};
  Authenticator a({r});
  std::string t = token("iss-a", {{"plan", {{"tier", "gold"}}}});
  std::string bearer = "Bearer " + t;
  Outcome out = run(a, {{"authorization", bearer}, {"x-sub", "forged"}});
  REQUIRE(out.kind == Outcome::Kind::kValid);
  CHECK_FALSE(removes(out, "authorization"));
  // The client's own copies of the output headers never reach the app.
  CHECK(removes(out, "x-jwt-payload"));
  CHECK(removes(out, "x-sub"));
  CHECK(removes(out, "x-tier"));
  using Set = std::vector<std::pair<std::string, std::string>>;
  std::string payload = t.substr(t.find('.') + 1, t.rfind('.') - t.find('.') - 1);
  CHECK(out.set_headers == Set{{"x-jwt-payload", payload}, {"x-sub", "alice"}, {"x-tier", "gold"}});
  CHECK(json::parse(*base64UrlDecode(payload))["sub"] == "alice");
  // Without a token the forged headers are still removed and nothing is set.
  Outcome none = run(a, {{"x-sub", "forged"}});
  CHECK(none.kind == Outcome::Kind::kNoToken);
  CHECK(removes(none, "x-sub"));
  CHECK(none.set_headers.empty());
}

TEST_CASE("the engine's view of a valid token", "[jwt]") {
  Authenticator a({rule()});
  std::string bearer = "Bearer " + token("iss-a", {{"azp", "web"},
                                                   {"aud", {"a1", "a2"}},
                                                   {"groups", {"dev", "ops"}},
                                                   {"realm", {{"roles", {"reader"}}}}});
  Outcome out = run(a, {{"authorization", bearer}});
  const policy::RequestAuth* auth = out.auth();
  REQUIRE(auth != nullptr);
  CHECK(auth->principal == "iss-a/alice");
  CHECK(auth->presenter == "web");
  CHECK(auth->audiences == std::vector<std::string_view>{"a1", "a2"});
  auto has = [&](std::string_view k, std::string_view v) {
    return std::find(auth->claims.begin(), auth->claims.end(), std::pair{k, v}) !=
           auth->claims.end();
  };
  CHECK(has("groups", "dev"));
  CHECK(has("groups", "ops"));
  CHECK(has("realm][roles", "reader"));
  CHECK_FALSE(has("exp", std::to_string(kNow + 60)));  // numbers are not string claims
}

TEST_CASE("key rotation: a new JWKS applies to the next request", "[jwt]") {
  TestKey old_key(TestKey::Type::kRsa, "2024");
  TestKey new_key(TestKey::Type::kRsa, "2025");
  json c = {{"iss", "iss-a"}, {"sub", "s"}};
  std::string old_bearer = "Bearer " + old_key.sign("RS256", c);
  std::string new_bearer = "Bearer " + new_key.sign("RS256", c);
  model::JwtRule r = rule();
  r.jwks = old_key.jwks();
  Authenticator before({r});
  CHECK(run(before, {{"authorization", old_bearer}}).kind == Outcome::Kind::kValid);
  CHECK(run(before, {{"authorization", new_bearer}}).error ==
        "Jwks doesn't have key to match kid or alg from Jwt");
  r.jwks = json{{"keys", {old_key.jwk(), new_key.jwk()}}}.dump();  // overlap
  Authenticator during({r});
  CHECK(run(during, {{"authorization", old_bearer}}).kind == Outcome::Kind::kValid);
  CHECK(run(during, {{"authorization", new_bearer}}).kind == Outcome::Kind::kValid);
  r.jwks = new_key.jwks();
  Authenticator after({r});
  CHECK(run(after, {{"authorization", old_bearer}}).kind == Outcome::Kind::kInvalid);
  CHECK(run(after, {{"authorization", new_bearer}}).kind == Outcome::Kind::kValid);
}

TEST_CASE("a verified token is remembered, but time still applies to it", "[jwt]") {
  Authenticator a({rule()});
  std::string bearer = "Bearer " + token();  // exp = kNow + 60
  for (int i = 0; i < 3; ++i) {
    Outcome out = run(a, {{"authorization", bearer}});
    REQUIRE(out.kind == Outcome::Kind::kValid);
    CHECK(out.principal == "iss-a/alice");
    REQUIRE(out.auth() != nullptr);
    CHECK(out.auth()->principal == "iss-a/alice");
  }
  // Past exp + skew the same text is refused, cached or not.
  Outcome late;
  a.authenticate({{"authorization", bearer}}, "", kNow + 60 + kClockSkewSeconds + 1, late);
  CHECK(late.error == "Jwt is expired");
  // One character changed in the signature is a different token, verified afresh.
  std::string tampered = bearer;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  CHECK(run(a, {{"authorization", tampered}}).error == "Jwt verification fails");
  // Many distinct tokens: the bounded cache keeps answering correctly.
  for (int i = 0; i < 1000; ++i) {
    std::string b = "Bearer " + token("iss-a", {{"n", i}});
    REQUIRE(run(a, {{"authorization", b}}).kind == Outcome::Kind::kValid);
  }
  CHECK(run(a, {{"authorization", bearer}}).kind == Outcome::Kind::kValid);
}

TEST_CASE("a rule without keys refuses its tokens, missing tokens still pass", "[jwt]") {
  model::JwtRule fetched = rule();
  fetched.jwks.clear();
  fetched.jwks_uri = "https://issuer.example/jwks";
  fetched.jwks_error = "never fetched: connection refused";
  model::JwtRule broken = rule("iss-b");
  broken.jwks = "{not json";
  Authenticator a({fetched, broken});
  CHECK(a.keyErrors().size() == 2);
  std::string ta = "Bearer " + token("iss-a");
  std::string tb = "Bearer " + token("iss-b");
  CHECK(run(a, {{"authorization", ta}}).error == "Jwks remote fetch is failed");
  CHECK(run(a, {{"authorization", tb}}).error == "Jwks remote fetch is failed");
  CHECK(run(a, {}).kind == Outcome::Kind::kNoToken);
}

TEST_CASE("several issuers and several tokens", "[jwt]") {
  model::JwtRule b = rule("iss-b");
  b.from_headers = {{"x-b", ""}};
  Authenticator a({rule("iss-a"), b});
  std::string ta = "Bearer " + token("iss-a");
  std::string tb = token("iss-b");
  // Each issuer's token verifies with its own rule.
  CHECK(run(a, {{"authorization", ta}}).principal == "iss-a/alice");
  CHECK(run(a, {{"x-b", tb}}).principal == "iss-b/alice");
  // Both valid: the first found gives the principal.
  CHECK(run(a, {{"authorization", ta}, {"x-b", tb}}).kind == Outcome::Kind::kValid);
  // One valid and one invalid: refused.
  CHECK(run(a, {{"authorization", ta}, {"x-b", "e30.e30.AA"}}).kind == Outcome::Kind::kInvalid);
}

TEST_CASE("rulesFor: root namespace, namespace-wide and selected RequestAuthentications", "[jwt]") {
  auto ra = [](std::string ns, std::string name, std::optional<model::Labels> sel,
               std::string issuer) {
    model::RequestAuthentication r;
    r.key = {std::move(ns), std::move(name)};
    r.selector = std::move(sel);
    model::JwtRule jr;
    jr.issuer = std::move(issuer);
    r.jwt_rules.push_back(jr);
    return r;
  };
  std::vector<model::RequestAuthentication> all = {
      ra("demo", "web-only", model::Labels{{"app", "web"}}, "web"),
      ra("demo", "ns-wide", std::nullopt, "ns"),
      ra("ferry-system", "mesh", std::nullopt, "mesh"),
      ra("other", "elsewhere", std::nullopt, "other"),
      ra("demo", "db-only", model::Labels{{"app", "db"}}, "db"),
  };
  model::Workload web;
  web.key = {"demo", "web-1"};
  web.labels = {{"app", "web"}};
  std::vector<std::string> issuers;
  for (const auto& r : rulesFor(all, web, "ferry-system")) {
    issuers.push_back(r.issuer);
  }
  CHECK(issuers == std::vector<std::string>{"mesh", "web", "ns"});
}

}  // namespace
}  // namespace ferry::jwt::testing
