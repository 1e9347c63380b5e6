// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Controller distribution server and the agent's client, over real gRPC + TLS on loopback.

#include "controller/distribution/server.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "controller/ca/fake_node_view.h"
#include "controlplane/client.h"
#include "eventually.h"
#include "tls/spiffe.h"
#include "tls/x509.h"

namespace ferry::distribution {
namespace {

using ferry::testing::eventually;
using namespace std::chrono_literals;

using testing::FakeNodeView;

constexpr char kToken[] = "standalone-bootstrap-token-0123456789";

bool hasPod(const std::optional<model::NodeSnapshot>& s, const std::string& name) {
  if (!s.has_value()) {
    return false;
  }
  for (const model::Workload& w : s->workloads) {
    if (w.key.name == name) {
      return true;
    }
  }
  return false;
}

struct Fixture {
  std::string dir;
  std::unique_ptr<ca::CertificateAuthority> authority;
  FakeNodeView view;
  std::unique_ptr<BootstrapTokenFile> tokens;
  ServerConfig config;
  std::unique_ptr<DistributionServer> server;
  int port = 0;

  Fixture() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-dist-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    auto made = ca::CertificateAuthority::loadOrCreate(dir, ca::CaConfig{}, absl::Now());
    REQUIRE(made.ok());
    authority = std::move(*made);
    auto parsed = BootstrapTokenFile::parse(std::string(kToken) + "\n");
    REQUIRE(parsed.ok());
    tokens = std::move(*parsed);
    config.listen_address = "127.0.0.1:0";
    config.idle_poll = absl::Milliseconds(20);
    startServer();
    view.upsertWorkload(FakeNodeView::pod("shop", "web-1", "node1", "web"));
    view.upsertWorkload(FakeNodeView::pod("shop", "db-1", "node2", "db"));
  }
  ~Fixture() {
    server.reset();
    std::filesystem::remove_all(dir);
  }

  void startServer() {
    if (port != 0) {
      config.listen_address = "127.0.0.1:" + std::to_string(port);
    }
    auto started = DistributionServer::start(config, *authority, view, *tokens);
    REQUIRE(started.ok());
    server = std::move(*started);
    port = server->port();
  }

  controlplane::ClientConfig clientConfig(const std::string& node,
                                          const std::string& token = kToken) {
    controlplane::ClientConfig c;
    c.address = "127.0.0.1:" + std::to_string(port);
    c.node = node;
    c.ca_bundle_pem = authority->trustBundlePem(absl::Now());
    c.controller_identity = controllerIdentity("cluster.local", config);
    c.bootstrap_token = [token]() -> absl::StatusOr<std::string> { return token; };
    c.initial_backoff = absl::Milliseconds(20);
    c.max_backoff = absl::Milliseconds(100);
    return c;
  }
};

std::string csrFor(const std::string& uri) {
  auto key = tls::generateP256Key();
  REQUIRE(key.ok());
  auto csr = tls::createCsr(key->get(), *tls::SpiffeId::parse(uri));
  REQUIRE(csr.ok());
  return *tls::csrToPem(csr->get());
}

TEST_CASE("an agent gets a node-scoped snapshot, then deltas", "[distribution]") {
  Fixture f;
  auto client = controlplane::ControlPlaneClient::start(f.clientConfig("node1"), nullptr);
  REQUIRE(client.ok());
  auto& c = **client;
  REQUIRE(eventually([&] { return hasPod(c.snapshot(), "web-1"); }, 10s,
                     "hasPod(c.snapshot(), \"web-1\")"));
  CHECK_FALSE(hasPod(c.snapshot(), "db-1"));  // node2's pod is not node1's business
  CHECK(c.stats().full_snapshots == 1);
  CHECK(c.snapshot()->node == "node1");
  CHECK_THAT(c.snapshot()->trust_bundle_pem, Catch::Contains("BEGIN CERTIFICATE"));

  // A pod on another node, then one on this node: only the latter arrives.
  f.view.upsertWorkload(FakeNodeView::pod("shop", "db-2", "node2", "db"));
  f.view.upsertWorkload(FakeNodeView::pod("shop", "web-2", "node1", "web"));
  REQUIRE(eventually([&] { return hasPod(c.snapshot(), "web-2"); }, 10s,
                     "hasPod(c.snapshot(), \"web-2\")"));
  CHECK_FALSE(hasPod(c.snapshot(), "db-2"));
  // ... except as an entry of the pod index, which deltas keep current.
  auto indexed = [&](const std::string& name) {
    auto s = c.snapshot();
    return s.has_value() &&
           std::any_of(s->pod_index.begin(), s->pod_index.end(),
                       [&](const model::Workload& w) { return w.key.name == name; });
  };
  CHECK(indexed("db-1"));
  CHECK(indexed("db-2"));
  f.view.removeWorkload(FakeNodeView::pod("shop", "db-2", "node2").uid);
  REQUIRE(eventually([&] { return !indexed("db-2"); }, 10s, "!indexed(\"db-2\")"));
  CHECK(indexed("db-1"));

  // Update and delete travel as deltas too.
  model::Workload relabeled = FakeNodeView::pod("shop", "web-1", "node1", "web");
  relabeled.labels["version"] = "v2";
  f.view.upsertWorkload(relabeled);
  f.view.removeWorkload(FakeNodeView::pod("shop", "web-2", "node1").uid);
  REQUIRE(eventually(
      [&] {
        auto s = c.snapshot();
        return !hasPod(s, "web-2") && hasPod(s, "web-1") && s->workloads[0].labels.count("version");
      },
      10s,
      "auto s = c.snapshot(); return !hasPod(s, \"web-2\") && hasPod(s, \"web-1\") && "
      "s->workloads[0].labels.count(\"version\")"));
  CHECK(c.stats().full_snapshots == 1);
  CHECK(c.stats().deltas >= 2);
  CHECK(c.stats().rejected_updates == 0);
  CHECK(f.server->fullSnapshotsSent() == 1);

  // A root rotation reaches the agent as a new trust bundle holding both roots.
  const std::string old_root = f.authority->activeRootPem();
  REQUIRE(f.authority->rotate(absl::Now()).ok());
  f.server->trustBundleChanged();
  REQUIRE(eventually(
      [&] { return c.snapshot()->trust_bundle_pem == f.authority->activeRootPem() + old_root; },
      10s, "c.snapshot()->trust_bundle_pem == f.authority->activeRootPem() + old_root"));
}

TEST_CASE("a reconnecting agent resumes from its version with a delta", "[distribution]") {
  Fixture f;
  auto client = controlplane::ControlPlaneClient::start(f.clientConfig("node1"), nullptr);
  REQUIRE(client.ok());
  auto& c = **client;
  REQUIRE(eventually([&] { return hasPod(c.snapshot(), "web-1"); }, 10s,
                     "hasPod(c.snapshot(), \"web-1\")"));
  const uint64_t version_before = c.version();

  f.server->dropStreams();
  f.view.upsertWorkload(FakeNodeView::pod("shop", "web-3", "node1", "web"));
  REQUIRE(eventually([&] { return hasPod(c.snapshot(), "web-3"); }, 10s,
                     "hasPod(c.snapshot(), \"web-3\")"));
  CHECK(f.server->resumes() >= 1);
  CHECK(f.server->fullSnapshotsSent() == 1);  // never a second full snapshot
  CHECK(c.stats().full_snapshots == 1);
  CHECK(c.version() > version_before);
  CHECK(hasPod(c.snapshot(), "web-1"));
}

TEST_CASE("an agent keeps its last good state while the controller is away", "[distribution]") {
  Fixture f;
  auto client = controlplane::ControlPlaneClient::start(f.clientConfig("node1"), nullptr);
  REQUIRE(client.ok());
  auto& c = **client;
  REQUIRE(eventually([&] { return hasPod(c.snapshot(), "web-1") && c.connected(); }, 10s,
                     "hasPod(c.snapshot(), \"web-1\") && c.connected()"));
  const model::NodeSnapshot before = *c.snapshot();

  f.server.reset();  // controller gone
  REQUIRE(eventually([&] { return !c.connected(); }, 10s, "!c.connected()"));
  REQUIRE(c.snapshot().has_value());
  CHECK(c.snapshot()->version == before.version);
  CHECK(hasPod(c.snapshot(), "web-1"));
  CHECK(c.signWorkload({"shop", "web-1"}, csrFor("spiffe://cluster.local/ns/shop/sa/web"),
                       absl::Seconds(2))
            .status()
            .code() == absl::StatusCode::kUnavailable);

  // The world changes meanwhile; a restarted controller (new epoch) sends a full snapshot.
  f.view.upsertWorkload(FakeNodeView::pod("shop", "web-4", "node1", "web"));
  CHECK_FALSE(hasPod(c.snapshot(), "web-4"));
  f.startServer();
  REQUIRE(eventually([&] { return hasPod(c.snapshot(), "web-4"); }, 10s,
                     "hasPod(c.snapshot(), \"web-4\")"));
  CHECK(c.stats().full_snapshots == 2);
  CHECK(hasPod(c.snapshot(), "web-1"));
}

TEST_CASE("workload certificates over mTLS follow the node and service account", "[distribution]") {
  Fixture f;
  auto client = controlplane::ControlPlaneClient::start(f.clientConfig("node1"), nullptr);
  REQUIRE(client.ok());
  auto& c = **client;
  REQUIRE(eventually([&] { return c.snapshot().has_value(); }, 10s, "c.snapshot().has_value()"));

  auto ok = c.signWorkload({"shop", "web-1"}, csrFor("spiffe://cluster.local/ns/shop/sa/web"),
                           absl::Seconds(5));
  REQUIRE(ok.ok());
  auto info = tls::inspectCert(tls::certFromPem(*ok)->get());
  REQUIRE(info.ok());
  CHECK(info->uri_sans == std::vector<std::string>{"spiffe://cluster.local/ns/shop/sa/web"});

  auto other_node = c.signWorkload({"shop", "db-1"}, csrFor("spiffe://cluster.local/ns/shop/sa/db"),
                                   absl::Seconds(5));
  CHECK(other_node.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK_THAT(std::string(other_node.status().message()), Catch::Contains("node2"));
  auto wrong_sa = c.signWorkload({"shop", "web-1"}, csrFor("spiffe://cluster.local/ns/shop/sa/db"),
                                 absl::Seconds(5));
  CHECK(wrong_sa.status().code() == absl::StatusCode::kPermissionDenied);
}

TEST_CASE("an agent refuses a controller that is not the expected identity", "[distribution]") {
  Fixture f;
  controlplane::ClientConfig config = f.clientConfig("node1");
  config.controller_identity = "spiffe://cluster.local/ns/ferry-system/sa/impostor";
  auto client = controlplane::ControlPlaneClient::start(config, nullptr);
  REQUIRE(client.ok());
  auto& c = **client;
  REQUIRE(eventually([&] { return c.stats().connects >= 3; }, 10s, "c.stats().connects >= 3"));
  CHECK_FALSE(c.snapshot().has_value());
  CHECK(c.stats().bootstraps == 0);
  CHECK_THAT(c.lastError(), Catch::Contains("controller is not"));
}

TEST_CASE("bootstrap needs a valid token, without one no snapshot", "[distribution]") {
  Fixture f;
  auto client = controlplane::ControlPlaneClient::start(
      f.clientConfig("node1", "wrong-token-wrong-token-wrong"), nullptr);
  REQUIRE(client.ok());
  auto& c = **client;
  REQUIRE(eventually([&] { return c.stats().connects >= 3; }, 10s, "c.stats().connects >= 3"));
  CHECK_FALSE(c.snapshot().has_value());
  CHECK_THAT(c.lastError(), Catch::Contains("bootstrap token not valid"));
  CHECK(c.stats().bootstraps == 0);
}

}  // namespace
}  // namespace ferry::distribution
