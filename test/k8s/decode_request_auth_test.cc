// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// RequestAuthentication (issue 21 point 2): what decodes to which JwtRule, and what is refused
// with which field path.
#include <catch2/catch.hpp>
#include <string>

#include "k8s/decode.h"

namespace ferry::k8s {
namespace {

using Catch::Matchers::Contains;

constexpr const char* kJwks =
    R"('{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"Ao2uBGXVS8ON8B1YIWPw1_fa2vURCct-9bAxrhX2vBQ","y":"961uxCElY6dubpnDHoSjqZG8hwua6O9U5gveRpLPcgM"}]}')";

std::string ra(const std::string& spec) {
  return "apiVersion: security.ferry.dev/v1alpha1\nkind: RequestAuthentication\n"
         "metadata: {name: r, namespace: demo}\nspec:\n" +
         spec;
}

std::string rule(const std::string& extra) {
  return ra(std::string("  jwtRules:\n  - issuer: iss\n    jwks: ") + kJwks + "\n" + extra);
}

TEST_CASE("RequestAuthentication decodes every JWTRule field", "[k8s][jwt]") {
  auto d = decodeObjectText(ra(std::string("  selector: {matchLabels: {app: web}}\n"
                                           "  jwtRules:\n"
                                           "  - issuer: https://a.example\n"
                                           "    audiences: [web, api]\n"
                                           "    jwks: ") +
                               kJwks +
                               "\n"
                               "    fromHeaders: [{name: x-jwt, prefix: 'Token '}, {name: x-b}]\n"
                               "    fromParams: [jwt]\n"
                               "    forwardOriginalToken: true\n"
                               "    outputPayloadToHeader: x-payload\n"
                               "    outputClaimToHeaders: [{header: x-sub, claim: sub}]\n"
                               "  - issuer: https://b.example\n"
                               "    jwksUri: https://b.example/jwks.json\n"));
  INFO((d.ok() ? std::string("ok") : std::string(d.status().message())));
  REQUIRE(d.ok());
  CHECK(d->ref.str() == "RequestAuthentication demo/r");
  const auto& r = std::get<model::RequestAuthentication>(d->object);
  REQUIRE(r.selector.has_value());
  CHECK(r.selector->at("app") == "web");
  REQUIRE(r.jwt_rules.size() == 2);
  const model::JwtRule& a = r.jwt_rules[0];
  CHECK(a.issuer == "https://a.example");
  CHECK(a.audiences == std::vector<std::string>{"web", "api"});
  CHECK_THAT(a.jwks, Contains("P-256"));
  CHECK(a.jwks_uri.empty());
  CHECK(a.from_headers == std::vector<model::JwtHeader>{{"x-jwt", "Token "}, {"x-b", ""}});
  CHECK(a.from_params == std::vector<std::string>{"jwt"});
  CHECK(a.forward_original_token);
  CHECK(a.output_payload_to_header == "x-payload");
  CHECK(a.output_claim_to_headers == std::vector<model::ClaimToHeader>{{"x-sub", "sub"}});
  const model::JwtRule& b = r.jwt_rules[1];
  CHECK(b.jwks_uri == "https://b.example/jwks.json");
  CHECK(b.jwks.empty());
  CHECK_FALSE(b.forward_original_token);
}

TEST_CASE("RequestAuthentication refusals name the field", "[k8s][jwt]") {
  struct Row {
    const char* name;
    std::string manifest;
    const char* error;
  };
  const Row rows[] = {
      {"issuer missing", ra("  jwtRules:\n  - {jwksUri: 'https://x/j'}\n"),
       "spec.jwtRules[0].issuer"},
      {"neither jwks nor jwksUri", ra("  jwtRules:\n  - {issuer: i}\n"),
       "needs exactly one of jwks and jwksUri"},
      {"both jwks and jwksUri", rule("    jwksUri: https://x/j\n"),
       "needs exactly one of jwks and jwksUri"},
      {"inline JWKS with an oct key only",
       ra("  jwtRules:\n  - {issuer: i, jwks: '{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\"}]}'}\n"),
       "spec.jwtRules[0].jwks: JWKS has no RSA or EC"},
      {"inline JWKS not JSON", ra("  jwtRules:\n  - {issuer: i, jwks: 'nope'}\n"),
       "spec.jwtRules[0].jwks"},
      {"jwksUri not http(s)", ra("  jwtRules:\n  - {issuer: i, jwksUri: 'file:///etc/passwd'}\n"),
       "spec.jwtRules[0].jwksUri: 'file:///etc/passwd' is not an http(s) URL"},
      {"fromCookies unsupported", rule("    fromCookies: [session]\n"),
       "spec.jwtRules[0].fromCookies: not supported"},
      {"timeout unsupported", rule("    timeout: 5s\n"), "spec.jwtRules[0].timeout"},
      {"header name with a space", rule("    fromHeaders: [{name: 'x jwt'}]\n"),
       "spec.jwtRules[0].fromHeaders[0].name"},
      {"output to Host", rule("    outputPayloadToHeader: Host\n"), "may not be set from a token"},
      {"claim header missing", rule("    outputClaimToHeaders: [{claim: sub}]\n"),
       "spec.jwtRules[0].outputClaimToHeaders[0].header"},
      {"param with '='", rule("    fromParams: ['a=b']\n"), "spec.jwtRules[0].fromParams[0]"},
      {"unknown field", rule("    issuers: [x]\n"), "issuers"},
      {"forwardOriginalToken not a bool", rule("    forwardOriginalToken: maybe\n"),
       "spec.jwtRules[0].forwardOriginalToken"},
      {"duplicate issuer",
       ra("  jwtRules:\n  - {issuer: i, jwksUri: 'https://x/j'}\n"
          "  - {issuer: i, jwksUri: 'https://y/j'}\n"),
       "spec.jwtRules[1].issuer: issuer 'i' is already used by jwtRules[0]"},
      {"targetRef", ra("  targetRef: {kind: Gateway, name: g}\n"), "spec.targetRef: not supported"},
  };
  for (const Row& row : rows) {
    SECTION(row.name) {
      auto d = decodeObjectText(row.manifest);
      REQUIRE_FALSE(d.ok());
      CHECK_THAT(std::string(d.status().message()), Contains(row.error));
    }
  }
}

}  // namespace
}  // namespace ferry::k8s
