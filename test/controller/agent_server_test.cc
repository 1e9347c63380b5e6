// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// ferry-controller's agent-facing half as main.cc assembles it: a standalone folder feeds the
// store, the CA and distribution server serve a real agent client over mTLS on loopback.
#include "controller/agent_server.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>

#include "controller/running_controller.h"
#include "controller/view_testing.h"
#include "controlplane/client.h"
#include "distribution/snapshot_delta.h"
#include "status_testing.h"
#include "tls/spiffe.h"
#include "tls/verify.h"
#include "tls/x509.h"

namespace ferry::controller {
namespace {

namespace fs = std::filesystem;
using testing::waitUntil;

constexpr char kToken[] = "node1-bootstrap-token-0123456789";

constexpr char kManifests[] = R"(apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {ferry.dev/mesh: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: demo, uid: uid-web, labels: {app: web}}
spec: {nodeName: node1, serviceAccountName: web}
status: {podIP: 10.244.1.10, podIPs: [{ip: 10.244.1.10}]}
)";

int countCerts(const std::string& pem) {
  int n = 0;
  for (size_t at = pem.find("BEGIN CERTIFICATE"); at != std::string::npos;
       at = pem.find("BEGIN CERTIFICATE", at + 1)) {
    ++n;
  }
  return n;
}

struct Fixture : testing::RunningController {
  Fixture() : RunningController(kManifests, std::string(kToken) + " node1\n") {}

  controlplane::ClientConfig client(const std::string& node) const {
    controlplane::ClientConfig c;
    c.address = address();
    c.node = node;
    c.ca_bundle_pem = *tls::readPemFile(config.trust_bundle_file);
    c.bootstrap_token = []() -> absl::StatusOr<std::string> { return std::string(kToken); };
    c.initial_backoff = absl::Milliseconds(20);
    c.max_backoff = absl::Milliseconds(100);
    return c;
  }
};

std::string csrFor(const std::string& uri) {
  auto key = tls::generateP256Key();
  REQUIRE_OK(key);
  auto csr = tls::createCsr(key->get(), *tls::SpiffeId::parse(uri));
  REQUIRE_OK(csr);
  return *tls::csrToPem(csr->get());
}

TEST_CASE("agent server: an agent bootstraps with the token file, watches and gets certs") {
  Fixture f;
  CHECK(countCerts(*tls::readPemFile(f.config.trust_bundle_file)) == 1);
  auto client = controlplane::ControlPlaneClient::start(f.client("node1"), nullptr);
  REQUIRE_OK(client);
  REQUIRE(waitUntil([&] { return (*client)->snapshot().has_value(); }));
  auto snap = *(*client)->snapshot();
  CHECK(testing::hasWorkload(snap, "demo", "web"));
  CHECK(countCerts(snap.trust_bundle_pem) == 1);
  auto leaf = (*client)->signWorkload(
      {"demo", "web"}, csrFor("spiffe://cluster.local/ns/demo/sa/web"), absl::Seconds(10));
  REQUIRE_OK(leaf);
  CHECK(leaf->find("BEGIN CERTIFICATE") != std::string::npos);
}

TEST_CASE("agent server: a token bound to another node bootstraps nothing") {
  Fixture f;
  auto client = controlplane::ControlPlaneClient::start(f.client("node2"), nullptr);
  REQUIRE_OK(client);
  REQUIRE(waitUntil([&] { return (*client)->lastError().find("bootstrap") != std::string::npos; }));
  CHECK_FALSE((*client)->snapshot().has_value());
  CHECK((*client)->stats().bootstraps == 0);
}

TEST_CASE("agent server: a root rotation reaches watching agents and the bundle file") {
  Fixture f;
  auto client = controlplane::ControlPlaneClient::start(f.client("node1"), nullptr);
  REQUIRE_OK(client);
  REQUIRE(waitUntil([&] { return (*client)->snapshot().has_value(); }));
  const std::string old_root = f.server->authority().activeRootPem();
  REQUIRE_OK(f.server->rotateRoot());
  CHECK(f.server->authority().activeRootPem() != old_root);
  // Old and new roots are both trusted during the overlap, in the file and on the agent.
  CHECK(countCerts(*tls::readPemFile(f.config.trust_bundle_file)) == 2);
  REQUIRE(waitUntil([&] { return countCerts((*client)->snapshot()->trust_bundle_pem) == 2; }));
  CHECK((*client)->snapshot()->trust_bundle_pem.find(old_root) != std::string::npos);
  // The agent keeps working with the controller after the rotation: a new leaf is signed by
  // the new root.
  auto leaf = (*client)->signWorkload(
      {"demo", "web"}, csrFor("spiffe://cluster.local/ns/demo/sa/web"), absl::Seconds(10));
  REQUIRE_OK(leaf);
  auto bundle = tls::TrustBundle::fromPem(f.server->authority().activeRootPem());
  REQUIRE_OK(bundle);
  auto cert = tls::certFromPem(*leaf);
  REQUIRE_OK(cert);
  CHECK_OK(tls::verifySvid(**bundle, cert->get(), nullptr, "cluster.local", absl::Now()));
}

TEST_CASE("agent server: policy changes reach a watching agent equal to the view rebuilt") {
  Fixture f;
  auto client = controlplane::ControlPlaneClient::start(f.client("node1"), nullptr);
  REQUIRE_OK(client);
  REQUIRE(waitUntil([&] { return (*client)->snapshot().has_value(); }));
  auto content = [](const model::NodeSnapshot& s) {
    return distribution::indexSnapshot(s).resources;
  };
  std::mt19937 rng(5);
  int in_view = 0;
  for (int step = 0; step < 40; ++step) {
    // Policies selecting the local pod or not, changed and removed: only policy kinds change
    // after the folder's load, so the server takes each from the view's changes (changesSince).
    const model::ObjectKey key{"demo", "p" + std::to_string(rng() % 4)};
    const bool peer = rng() % 3 == 0;
    const k8s::ObjectRef ref{
        peer ? k8s::Kind::kPeerAuthentication : k8s::Kind::kAuthorizationPolicy, key};
    const model::Labels selector{{"app", rng() % 2 ? "web" : "other"}};
    if (rng() % 4 == 0) {
      f.store.remove(ref);
    } else if (peer) {
      model::PeerAuthentication p{key, selector, model::MtlsMode::kStrict, {}};
      p.port_modes[static_cast<uint16_t>(1000 + step)] = model::MtlsMode::kDisable;
      f.store.upsert({ref, "", p});
    } else {
      model::AuthorizationPolicy p;
      p.key = key;
      p.selector = selector;
      p.rules.emplace_back();
      p.rules[0].from.emplace_back();
      p.rules[0].from[0].principals = {"marker-" + std::to_string(step)};
      f.store.upsert({ref, "", p});
    }
    const auto want = content(f.store.snapshotFor("node1"));
    INFO("step " << step);
    REQUIRE(waitUntil([&] { return content(*(*client)->snapshot()) == want; }));
    in_view += want.count({distribution::v1::KIND_AUTHORIZATION_POLICY, key.str()}) +
               want.count({distribution::v1::KIND_PEER_AUTHENTICATION, key.str()});
  }
  CHECK(in_view > 5);
  CHECK((*client)->stats().full_snapshots == 1);
  CHECK((*client)->stats().rejected_updates == 0);
}

TEST_CASE("agent server: bad CA and token inputs are refused with the flag named") {
  fs::path dir =
      fs::temp_directory_path() / ("ferry-agent-server-bad-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "short") << "short\n";
  std::ofstream(dir / "junk.pem") << "not a pem\n";
  StateStore store;
  struct Row {
    std::function<void(ControllerConfig&)> edit;
    const char* expected;
  };
  const std::vector<Row> rows = {
      {[&](ControllerConfig& c) { c.bootstrap_token_file = dir / "missing"; },
       "--bootstrap-token-file"},
      {[&](ControllerConfig& c) { c.bootstrap_token_file = dir / "short"; }, "too guessable"},
      {[&](ControllerConfig& c) {
         c.ca_cert_file = dir / "junk.pem";
         c.ca_key_file = dir / "junk.pem";
       },
       "--ca-cert"},
  };
  for (const Row& row : rows) {
    ControllerConfig c;
    c.manifests_dir = dir;
    c.ca_dir = dir / "ca";
    c.listen = "127.0.0.1:0";
    c.bootstrap_token_file = dir / "tokens";
    std::ofstream(dir / "tokens") << kToken << "\n";
    row.edit(c);
    auto started = AgentServer::start(c, store, nullptr);
    INFO(row.expected);
    REQUIRE_FALSE(started.ok());
    CHECK(std::string(started.status().message()).find(row.expected) != std::string::npos);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ferry::controller
