// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// RequestAuthentication (JWT) through real agents fed by ferry-controller (issue 21 point 2).
// n1p1 calls Service api (n2p1:8080, an HTTP port); n2p1's app answers with the request fields
// it received. Tokens are signed here with OpenSSL (test/jwt/token_signer.h).
#include <catch2/catch.hpp>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "controller/jwks_server.h"
#include "e2e/mesh.h"
#include "eventually.h"
#include "jwt/token_signer.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

using ferry::testing::eventually;
using namespace std::chrono_literals;

using jwt::testing::TestKey;
using nlohmann::json;

constexpr char kVip[] = "10.96.0.50";
constexpr char kIssuer[] = "https://issuer.e2e";

struct Answer {
  int status = 0;
  std::string head, body;
};

// One request from n1p1 to api:80 with `fields` (each "Name: value"), on its own connection.
Answer call(Mesh& m, const std::string& path, const std::vector<std::string>& fields) {
  std::string text = absl::StrCat("GET ", path, " HTTP/1.1\\r\\nHost: api\\r\\n");
  for (const auto& f : fields) {
    absl::StrAppend(&text, f, "\\r\\n");
  }
  absl::StrAppend(&text, "Connection: close\\r\\n\\r\\n");
  auto out = m.run(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "http-raw",
                                 absl::StrCat("--host=", kVip), "--port=80", "--text=" + text});
  REQUIRE_OK(out);
  Answer a;
  const size_t end = out->find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  a.head = out->substr(0, end);
  a.body = out->substr(end + 4);
  REQUIRE(a.head.starts_with("HTTP/1.1 "));
  a.status = std::stoi(a.head.substr(9, 3));
  return a;
}

std::string requestAuthentication(const std::string& jwks, bool forward) {
  return absl::StrCat(
      "apiVersion: security.ferry.dev/v1alpha1\nkind: RequestAuthentication\n"
      "metadata: {name: api-jwt, namespace: default}\nspec:\n"
      "  selector: {matchLabels: {app: n2p1}}\n  jwtRules:\n  - issuer: ",
      kIssuer, "\n    audiences: [api]\n    jwks: '", jwks,
      "'\n    forwardOriginalToken: ", forward ? "true" : "false",
      "\n    outputPayloadToHeader: x-jwt-payload\n"
      "    outputClaimToHeaders: [{header: x-user, claim: sub}]\n");
}

std::string allowPolicy(const std::string& rules) {
  return absl::StrCat(
      "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
      "metadata: {name: api-allow, namespace: default}\nspec:\n"
      "  selector: {matchLabels: {app: n2p1}}\n  action: ALLOW\n  rules:\n",
      rules);
}

std::string bearer(const TestKey& key, json extra = json::object()) {
  const int64_t now = std::time(nullptr);
  json claims = {{"iss", kIssuer}, {"sub", "alice"}, {"aud", "api"}, {"exp", now + 300}};
  claims.update(extra);
  return "Authorization: Bearer " + key.sign("ES256", claims);
}

// The api Service on n2p1, an HTTP app that echoes the request headers it received.
absl::Status startApi(Mesh& m) {
  if (auto s = m.startApp(
          m.pod(2, 1), {"http-app", "--port=8080", "--name=api", "--behavior=echo-headers"}, 8080);
      !s.ok()) {
    return s;
  }
  return m.applyManifest(
      "api.yaml", absl::StrCat("apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: "
                               "default}\nspec:\n  clusterIP: ",
                               kVip,
                               "\n  ports: [{name: http, port: 80, targetPort: 8080}]\n"
                               "  selector: {app: n2p1}\n"));
}

TEST_CASE("JWT e2e: 401 for bad tokens, principals and claims in policy, outputs, key rotation",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start(MeshOptions{});
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE_OK(startApi(m));
  const TestKey key(TestKey::Type::kP256, "k1");
  REQUIRE_OK(m.applyManifest("jwt.yaml", requestAuthentication(key.jwks(), false)));

  // A valid token: forwarded without it, with the payload and the sub claim as fields.
  Answer ok = call(m, "/x", {bearer(key)});
  INFO(ok.head << "\n" << ok.body);
  REQUIRE(ok.status == 200);
  json seen = json::parse(ok.body);
  CHECK_FALSE(seen.contains("authorization"));
  CHECK(seen.value("x-user", "") == "alice");
  REQUIRE(seen.contains("x-jwt-payload"));
  CHECK(json::parse(*jwt::base64UrlDecode(seen["x-jwt-payload"].get<std::string>()))["sub"] ==
        "alice");

  // A client's own x-user never reaches the app.
  Answer forged = call(m, "/x", {"x-user: mallory"});
  CHECK(forged.status == 200);
  CHECK_FALSE(json::parse(forged.body).contains("x-user"));

  // Invalid tokens: 401 with Envoy's body and WWW-Authenticate.
  const int64_t now = std::time(nullptr);
  struct Bad {
    const char* name;
    std::string field;
    const char* body;
  };
  std::string flipped = bearer(key);
  flipped[flipped.size() - 3] = flipped[flipped.size() - 3] == 'A' ? 'B' : 'A';
  const TestKey stranger(TestKey::Type::kP256, "k1");
  const Bad bad[] = {
      {"expired", bearer(key, {{"exp", now - 120}}), "Jwt is expired"},
      {"wrong audience", bearer(key, {{"aud", "other"}}), "Audiences in Jwt are not allowed"},
      {"wrong issuer", bearer(key, {{"iss", "https://evil"}}), "Jwt issuer is not configured"},
      {"bad signature", flipped, "Jwt verification fails"},
      {"another key, same kid", bearer(stranger), "Jwt verification fails"},
      {"alg none", "Authorization: Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.",
       "Jwt header [alg] is not supported"},
  };
  for (const Bad& b : bad) {
    INFO(b.name);
    Answer a = call(m, "/x", {b.field});
    CHECK(a.status == 401);
    CHECK(a.body == b.body);
    CHECK_THAT(a.head, Catch::Contains("www-authenticate: Bearer realm=\"http://api/x\", "
                                       "error=\"invalid_token\""));
  }
  CHECK(m.stat(2, "jwt_refused") >= 6);
  CHECK(m.stat(2, "jwt_valid") >= 1);

  // No token: allowed while no policy asks for a request principal.
  CHECK(call(m, "/x", {}).status == 200);
  // An ALLOW policy requiring a request principal: no token -> 403, a token -> 200.
  REQUIRE_OK(
      m.applyManifest("allow.yaml", allowPolicy(absl::StrCat("  - from:\n    - source:\n        "
                                                             "requestPrincipals: [\"",
                                                             kIssuer, "/*\"]\n"))));
  Answer missing = call(m, "/x", {});
  CHECK(missing.status == 403);
  CHECK(missing.body == "RBAC: access denied");
  CHECK(call(m, "/x", {bearer(key)}).status == 200);

  // Claims-based ALLOW: the groups claim must hold "admins".
  REQUIRE_OK(m.applyManifest(
      "allow.yaml",
      allowPolicy("  - when:\n    - key: request.auth.claims[groups]\n      values: [admins]\n")));
  CHECK(call(m, "/x", {bearer(key, {{"groups", {"dev"}}})}).status == 403);
  CHECK(call(m, "/x", {bearer(key, {{"groups", {"dev", "admins"}}})}).status == 200);
  REQUIRE_OK(m.removeManifest("allow.yaml"));

  // Key rotation, and forwardOriginalToken: the new JWKS applies to the next request.
  const TestKey next(TestKey::Type::kRsa, "k2");
  REQUIRE_OK(m.applyManifest("jwt.yaml", requestAuthentication(next.jwks(), true)));
  Answer old_key = call(m, "/x", {bearer(key)});
  CHECK(old_key.status == 401);
  CHECK(old_key.body == "Jwks doesn't have key to match kid or alg from Jwt");
  const int64_t t = std::time(nullptr);
  const std::string token =
      next.sign("RS256", json{{"iss", kIssuer}, {"sub", "bob"}, {"aud", "api"}, {"exp", t + 300}});
  Answer rotated = call(m, "/x", {"Authorization: Bearer " + token});
  INFO(rotated.body);
  REQUIRE(rotated.status == 200);
  CHECK(json::parse(rotated.body).value("authorization", "") == "Bearer " + token);
  CHECK(json::parse(rotated.body).value("x-user", "") == "bob");
}

TEST_CASE("JWT e2e: ferry-controller fetches a jwksUri, tokens are refused until it has keys",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  controller::testing::JwksServer server;  // on the host's loopback, where the controller runs
  server.answer(503, "");
  auto mesh = Mesh::start(MeshOptions{});
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE_OK(startApi(m));
  const TestKey key(TestKey::Type::kRsa, "uri-1");
  REQUIRE_OK(m.applyManifest(
      "jwt.yaml",
      absl::StrCat("apiVersion: security.ferry.dev/v1alpha1\nkind: RequestAuthentication\n"
                   "metadata: {name: api-jwt, namespace: default}\nspec:\n"
                   "  selector: {matchLabels: {app: n2p1}}\n  jwtRules:\n  - issuer: ",
                   kIssuer, "\n    jwksUri: ", server.uri(), "\n")));
  const int64_t t = std::time(nullptr);
  const std::string field =
      "Authorization: Bearer " +
      key.sign("RS256", json{{"iss", kIssuer}, {"sub", "carol"}, {"exp", t + 600}});
  // No keys yet (the URI answers 503): the issuer's tokens are refused, requests without pass.
  Answer refused = call(m, "/x", {field});
  CHECK(refused.status == 401);
  CHECK(refused.body == "Jwks remote fetch is failed");
  CHECK(call(m, "/x", {}).status == 200);
  CHECK(server.requests() >= 1);
  // The URI starts answering: the controller's retry fetches the keys and pushes them.
  server.answer(200, key.jwks());
  Answer ok;
  // Bounded: the retry is every 10 s.
  const bool accepted = eventually([&] { return (ok = call(m, "/x", {field})).status == 200; }, 30s,
                                   "the token to be accepted", 500ms);
  INFO(ok.head << "\n" << ok.body << "\n" << m.controllerLog());
  REQUIRE(accepted);
  CHECK(json::parse(ok.body).value("x-user", "-") == "-");  // no claim output configured
  CHECK_THAT(m.controllerLog(), Catch::Contains("jwksUri fetch failed"));
}

}  // namespace
}  // namespace ferry::e2e
