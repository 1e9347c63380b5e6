// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Two ferry-controller processes against the fake API server, as the chart runs them: one CA
// root generated once into a Secret and shared, one leader on the Lease, the trust bundle
// published by the leader, a root written into the Secret picked up, and the Lease handed over
// when the leader stops.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "controller/ca/ca.h"
#include "eventually.h"
#include "fakes/kube_api_server/fake_api_server.h"
#include "harness/process.h"

namespace ferry::controller {
namespace {

using ferry::testing::eventually;
using namespace std::chrono_literals;

using nlohmann::json;

std::string tempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "ferry-ha-XXXXXX").string();
  REQUIRE(mkdtemp(pattern.data()) != nullptr);
  return pattern;
}

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string holder(fakes::FakeApiServer& api) {
  auto lease = api.get(kube::kLeases, "ferry-system", "ferry-controller-leader");
  if (!lease || !(*lease)["spec"].contains("holderIdentity")) {
    return "";
  }
  return (*lease)["spec"]["holderIdentity"].get<std::string>();
}

std::string secretCert(fakes::FakeApiServer& api) {
  auto secret = api.get(kube::kSecrets, "ferry-system", "ferry-ca");
  std::string cert;
  if (secret) {
    absl::Base64Unescape((*secret)["data"]["tls.crt"].get<std::string>(), &cert);
  }
  return cert;
}

std::string publishedBundle(fakes::FakeApiServer& api) {
  auto map = api.get(kube::kConfigMaps, "ferry-system", "ferry-ca-root");
  return map ? (*map)["data"].value("root-cert.pem", "") : "";
}

TEST_CASE("controller replicas share one CA root, elect one leader and hand the Lease over",
          "[controller][ha]") {
  auto started = fakes::FakeApiServer::start();
  REQUIRE(started.ok());
  auto& api = **started;
  const std::string dir = tempDir();
  writeFile(dir + "/kubeconfig", absl::StrCat(R"(apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: ")",
                                              api.url(), R"("}}]
users: [{name: u, user: {token: unused}}]
contexts: [{name: c, context: {cluster: fake, user: u}}]
current-context: c
)"));
  writeFile(dir + "/tokens", "bootstrap-token-for-the-ha-test node1\n");

  std::map<std::string, std::unique_ptr<harness::Process>> replicas;
  for (const std::string name : {"ctrl-a", "ctrl-b"}) {
    auto p = harness::spawnProcess(
        {},
        {FERRY_CONTROLLER_BIN, "--kubeconfig=" + dir + "/kubeconfig", "--listen=127.0.0.1:0",
         "--bootstrap-token-file=" + dir + "/tokens", "--ca-secret=ferry-ca",
         "--ca-secret-generate", "--trust-bundle-configmap=ferry-ca-root", "--leader-elect",
         "--namespace=ferry-system", "--pod-name=" + name, "--lease-duration=3s",
         "--renew-deadline=2s", "--retry-period=200ms", "--resync-seconds=1"},
        dir + "/" + name + ".log");
    REQUIRE(p.ok());
    replicas[name] = std::move(*p);
  }
  auto logs = [&] { return replicas["ctrl-a"]->log() + "\n---\n" + replicas["ctrl-b"]->log(); };

  // One root, generated once, published by the one leader.
  if (!eventually([&] { return !holder(api).empty() && !publishedBundle(api).empty(); }, 30s,
                  "!holder(api).empty() && !publishedBundle(api).empty()")) {
    FAIL("no leader or no published bundle; logs:\n" << logs());
  }
  const std::string root = secretCert(api);
  REQUIRE(root.find("BEGIN CERTIFICATE") != std::string::npos);
  CHECK(publishedBundle(api) == root);
  const std::string first = holder(api);
  const std::string second = first == "ctrl-a" ? "ctrl-b" : "ctrl-a";
  REQUIRE(
      eventually([&] { return replicas[first]->log().find(first + " leads") != std::string::npos; },
                 30s, "replicas[first]->log().find(first + \" leads\") != std::string::npos"));
  CHECK(replicas[second]->log().find(second + " leads") == std::string::npos);

  // The operator writes a new root into the Secret: the bundle carries new and old roots.
  auto next = ca::CertificateAuthority::generateRootPem({}, absl::Now());
  REQUIRE(next.ok());
  json secret = *api.get(kube::kSecrets, "ferry-system", "ferry-ca");
  secret["data"]["tls.crt"] = absl::Base64Escape(next->cert_pem);
  secret["data"]["tls.key"] = absl::Base64Escape(next->key_pem);
  REQUIRE(api.update(secret).ok());
  REQUIRE(eventually(
      [&] {
        const std::string bundle = publishedBundle(api);
        return bundle.find(next->cert_pem) == 0 && bundle.find(root) != std::string::npos;
      },
      30s,
      "const std::string bundle = publishedBundle(api); return bundle.find(next->cert_pem) == 0 && "
      "bundle.find(root) != std::string::npos"));

  // The leader stops: it releases the Lease and the other replica leads at once.
  replicas[first]->signal(SIGTERM);
  auto code = replicas[first]->wait(absl::Seconds(20));
  REQUIRE(code.ok());
  CHECK(*code == 0);
  REQUIRE(eventually([&] { return holder(api) == second; }, 30s, "holder(api) == second"));
  REQUIRE(eventually(
      [&] { return replicas[second]->log().find(second + " leads") != std::string::npos; }, 30s,
      "replicas[second]->log().find(second + \" leads\") != std::string::npos"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ferry::controller
