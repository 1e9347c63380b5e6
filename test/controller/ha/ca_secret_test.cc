// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/ha/ca_secret.h"

#include <catch2/catch.hpp>

#include "absl/strings/escaping.h"
#include "fakes/kube_api_server/fake_api_server.h"

namespace ferry::controller {
namespace {

using nlohmann::json;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

struct Api {
  std::unique_ptr<fakes::FakeApiServer> server;
  std::unique_ptr<kube::Client> client;
  Api() {
    auto s = fakes::FakeApiServer::start();
    REQUIRE(s.ok());
    server = std::move(*s);
    client = std::make_unique<kube::Client>(server->clientConfig());
  }
};

TEST_CASE("CA secret: generated once, then every replica signs with the same root",
          "[controller][ha]") {
  Api api;
  auto first = caFromSecret(*api.client, "ferry-system", "ferry-ca", true, {}, kNow);
  REQUIRE(first.ok());
  auto stored = api.server->get(kube::kSecrets, "ferry-system", "ferry-ca");
  REQUIRE(stored.has_value());
  CHECK((*stored)["type"] == "kubernetes.io/tls");
  std::string cert;
  REQUIRE(absl::Base64Unescape((*stored)["data"]["tls.crt"].get<std::string>(), &cert));
  CHECK(cert == (*first)->activeRootPem());

  auto second = caFromSecret(*api.client, "ferry-system", "ferry-ca", true, {}, kNow);
  REQUIRE(second.ok());
  CHECK((*second)->activeRootPem() == (*first)->activeRootPem());
}

TEST_CASE("CA secret: two replicas racing to generate end up with one root", "[controller][ha]") {
  Api api;
  std::string roots[2];
  std::thread racers[2];
  for (int i = 0; i < 2; ++i) {
    racers[i] = std::thread([&, i] {
      auto ca = caFromSecret(*api.client, "ferry-system", "ferry-ca", true, {}, kNow);
      if (ca.ok()) {
        roots[i] = (*ca)->activeRootPem();
      }
    });
  }
  for (auto& t : racers) {
    t.join();
  }
  REQUIRE_FALSE(roots[0].empty());
  CHECK(roots[0] == roots[1]);
}

TEST_CASE("CA secret: missing or malformed secrets are refused with a reason", "[controller][ha]") {
  Api api;
  auto missing = caFromSecret(*api.client, "ferry-system", "ferry-ca", false, {}, kNow);
  REQUIRE_FALSE(missing.ok());
  CHECK(std::string(missing.status().message()).find("does not exist") != std::string::npos);

  json secret = {{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"metadata", {{"name", "ferry-ca"}, {"namespace", "ferry-system"}}},
                 {"data", {{"tls.crt", absl::Base64Escape("not a certificate")}}}};
  REQUIRE(api.server->create(secret).ok());
  auto no_key = caFromSecret(*api.client, "ferry-system", "ferry-ca", true, {}, kNow);
  REQUIRE_FALSE(no_key.ok());
  CHECK(std::string(no_key.status().message()).find("has no data.tls.key") != std::string::npos);

  auto stored = api.server->get(kube::kSecrets, "ferry-system", "ferry-ca");
  json edited = *stored;
  edited["data"]["tls.key"] = absl::Base64Escape("not a key");
  REQUIRE(api.server->update(edited).ok());
  auto garbage = caFromSecret(*api.client, "ferry-system", "ferry-ca", true, {}, kNow);
  REQUIRE_FALSE(garbage.ok());
  CHECK(std::string(garbage.status().message()).find("does not hold a usable CA root") !=
        std::string::npos);
}

TEST_CASE("trust bundle: published to a ConfigMap and updated after a rotation",
          "[controller][ha]") {
  Api api;
  auto ca = caFromSecret(*api.client, "ferry-system", "ferry-ca", true, {}, kNow);
  REQUIRE(ca.ok());
  const std::string before = (*ca)->trustBundlePem(kNow);
  REQUIRE(publishTrustBundle(*api.client, "ferry-system", "ferry-ca-root", before).ok());
  auto map = api.server->get(kube::kConfigMaps, "ferry-system", "ferry-ca-root");
  REQUIRE(map.has_value());
  CHECK((*map)["data"][kTrustBundleKey] == before);
  const std::string version = (*map)["metadata"]["resourceVersion"];

  // Same bundle: no write.
  REQUIRE(publishTrustBundle(*api.client, "ferry-system", "ferry-ca-root", before).ok());
  CHECK((*api.server->get(kube::kConfigMaps, "ferry-system",
                          "ferry-ca-root"))["metadata"]["resourceVersion"] == version);

  REQUIRE((*ca)->rotate(kNow).ok());
  const std::string after = (*ca)->trustBundlePem(kNow);
  REQUIRE(after != before);
  CHECK(after.find(before) != std::string::npos);  // old root still trusted in the overlap
  REQUIRE(publishTrustBundle(*api.client, "ferry-system", "ferry-ca-root", after).ok());
  CHECK((*api.server->get(kube::kConfigMaps, "ferry-system",
                          "ferry-ca-root"))["data"][kTrustBundleKey] == after);
}

}  // namespace
}  // namespace ferry::controller
