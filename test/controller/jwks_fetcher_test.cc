// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// jwksUri fetching by the controller (issue 21 point 2) against a local HTTP server: bounded in
// size and time, checked, pushed with the node state; a failure keeps the last good keys and is
// counted; a new key set (rotation) reaches the node state.
#include <catch2/catch.hpp>

#include "controller/jwks_fetcher.h"
#include "controller/jwks_server.h"
#include "controller/view_testing.h"
#include "k8s/decode.h"

namespace ferry::controller {
namespace {

using testing::JwksServer;

using testing::waitUntil;

constexpr const char* kJwksA =
    R"({"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"Ao2uBGXVS8ON8B1YIWPw1_fa2vURCct-9bAxrhX2vBQ","y":"961uxCElY6dubpnDHoSjqZG8hwua6O9U5gveRpLPcgM"}]})";
constexpr const char* kJwksB =
    R"({"keys":[{"kty":"EC","crv":"P-256","kid":"b","x":"Ao2uBGXVS8ON8B1YIWPw1_fa2vURCct-9bAxrhX2vBQ","y":"961uxCElY6dubpnDHoSjqZG8hwua6O9U5gveRpLPcgM"}]})";

TEST_CASE("fetchJwks: bounded, checked answers", "[controller][jwt]") {
  JwksServer server;
  JwksFetcherOptions options;
  options.timeout = std::chrono::milliseconds(300);
  options.max_bytes = 4096;

  server.answer(200, kJwksA);
  auto ok = fetchJwks(server.uri(), options);
  REQUIRE(ok.ok());
  CHECK(*ok == kJwksA);

  server.answer(500, kJwksA);
  CHECK_THAT(std::string(fetchJwks(server.uri(), options).status().message()),
             Catch::Contains("HTTP status 500"));

  server.answer(200, std::string(5000, ' '));
  CHECK(fetchJwks(server.uri(), options).status().code() == absl::StatusCode::kResourceExhausted);

  server.answer(200, R"({"keys":[{"kty":"oct","k":"AA"}]})");
  CHECK_THAT(std::string(fetchJwks(server.uri(), options).status().message()),
             Catch::Contains("no RSA or EC"));

  server.answer(200, kJwksA, /*silent=*/true);
  auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(fetchJwks(server.uri(), options).ok());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));

  CHECK_FALSE(fetchJwks("file:///etc/hostname", options).ok());
}

std::string manifests(const std::string& uri) {
  return "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo, labels: {ferry.dev/mesh: "
         "enabled}}\n---\n"
         "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: demo, uid: u1, labels: "
         "{app: web}}\nspec: {nodeName: n1, serviceAccountName: web}\nstatus: {podIP: "
         "10.244.1.10}\n---\n"
         "apiVersion: security.ferry.dev/v1alpha1\nkind: RequestAuthentication\n"
         "metadata: {name: jwt, namespace: demo}\nspec:\n  jwtRules:\n  - issuer: iss\n"
         "    jwksUri: " +
         uri + "\n";
}

const model::JwtRule* ruleIn(const model::NodeSnapshot& s) {
  return s.request_authentications.size() == 1 && s.request_authentications[0].jwt_rules.size() == 1
             ? &s.request_authentications[0].jwt_rules[0]
             : nullptr;
}

TEST_CASE("JwksFetcher: keys reach the node state, a failure keeps them, rotation",
          "[controller][jwt]") {
  JwksServer server;
  server.answer(503, "");
  StateStore store;
  for (const auto& doc : k8s::decodeDocuments(manifests(server.uri()), "test")) {
    INFO((doc.decoded.ok() ? "" : std::string(doc.decoded.status().message())));
    REQUIRE(doc.decoded.ok());
    store.upsert(*doc.decoded);
  }
  JwksFetcherOptions options;
  options.refresh = std::chrono::milliseconds(50);
  options.retry = std::chrono::milliseconds(50);
  options.timeout = std::chrono::milliseconds(500);
  JwksFetcher fetcher(store, options);

  // Before any fetch the rule says so; after a failed one it carries that error (its tokens are
  // refused).
  CHECK_FALSE(ruleIn(store.snapshotFor("n1"))->jwks_error.empty());
  REQUIRE(waitUntil([&] {
    const model::NodeSnapshot s = store.snapshotFor("n1");
    return ruleIn(s) && ruleIn(s)->jwks_error.find("HTTP status 503") != std::string::npos;
  }));
  CHECK(fetcher.failed() >= 1);
  CHECK(ruleIn(store.snapshotFor("n1"))->jwks.empty());

  server.answer(200, kJwksA);
  REQUIRE(waitUntil([&] { return ruleIn(store.snapshotFor("n1"))->jwks == kJwksA; }));
  CHECK(ruleIn(store.snapshotFor("n1"))->jwks_error.empty());

  // The server fails: failures are counted, the last good keys stay.
  const uint64_t failed_before = fetcher.failed();
  server.answer(500, "");
  REQUIRE(waitUntil([&] { return fetcher.failed() >= failed_before + 2; }));
  CHECK(ruleIn(store.snapshotFor("n1"))->jwks == kJwksA);
  CHECK(ruleIn(store.snapshotFor("n1"))->jwks_error.empty());

  // Rotation: a new key set is picked up at the next refresh, with a new store version.
  const uint64_t version = store.version();
  server.answer(200, kJwksB);
  REQUIRE(waitUntil([&] { return ruleIn(store.snapshotFor("n1"))->jwks == kJwksB; }));
  CHECK(store.version() > version);
}

}  // namespace
}  // namespace ferry::controller
