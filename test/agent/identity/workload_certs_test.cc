// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The agent's workload certificates from a real controller (in-process AgentServer over mTLS
// on loopback, standalone folder): issue for local pods only, renewal at half-life on a fake
// clock, re-issue from a rotated root.
#include "agent/identity/workload_certs.h"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "controller/running_controller.h"
#include "eventually.h"
#include "status_testing.h"
#include "tls/x509.h"

namespace ferry::agent {
namespace {

using ferry::testing::eventually;
using namespace std::chrono_literals;

namespace fs = std::filesystem;

constexpr char kToken[] = "agent-test-bootstrap-token-0123456789";
constexpr char kManifests[] = R"(apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {ferry.dev/mesh: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: demo, uid: uid-web, labels: {app: web}}
spec: {nodeName: node1, serviceAccountName: web}
status: {podIP: 10.244.1.10, podIPs: [{ip: 10.244.1.10}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: demo, uid: uid-db, labels: {app: db}}
spec: {nodeName: node2, serviceAccountName: db}
status: {podIP: 10.244.2.10, podIPs: [{ip: 10.244.2.10}]}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: demo}
spec:
  clusterIP: 10.96.0.20
  selector: {app: db}
  ports: [{port: 5432}]
)";

struct Fixture : controller::testing::RunningController {
  std::shared_ptr<ControllerLink> link;
  controlplane::FakeClock clock{absl::Now()};

  Fixture() : RunningController(kManifests, std::string(kToken) + "\n") {
    auto client = controllerClientConfig(address(), "node1", "cluster.local", dir / "tokens",
                                         config.trust_bundle_file);
    REQUIRE_OK(client);
    client->initial_backoff = absl::Milliseconds(20);
    link = std::make_shared<ControllerLink>(*client);
    REQUIRE_OK(link->start([](const model::NodeSnapshot&) {}));
    REQUIRE(eventually([&] { return link->snapshot().has_value(); }, 10s,
                       "link->snapshot().has_value()"));
  }
  ~Fixture() { link->stop(); }
};

std::string uriOf(const tls::TlsContext& ctx) {
  return ctx.identity().uri();
}

TEST_CASE("workload certs: identities of local pods only, issued ahead of first use") {
  Fixture f;
  ControllerCertificateStore certs(f.link, f.clock);
  CHECK(certs.refresh());
  CHECK(certs.stats().issued == 1);  // web on node1; db runs on node2
  auto web = certs.contextFor("demo", "web");
  REQUIRE_OK(web);
  CHECK(uriOf(**web) == "spiffe://cluster.local/ns/demo/sa/web");
  CHECK(certs.stats().issued == 1);  // served from the pass above
  auto db = certs.contextFor("demo", "db");
  REQUIRE_FALSE(db.ok());
  CHECK(std::string(db.status().message()).find("no mesh pod of demo/db on node node1") !=
        std::string::npos);
}

TEST_CASE("workload certs: an identity whose last local pod left is dropped") {
  Fixture f;
  ControllerCertificateStore certs(f.link, f.clock);
  certs.refresh();
  REQUIRE_OK(certs.contextFor("demo", "web"));
  const uint64_t version = f.link->snapshot()->version;
  // The web pod moves to node2.
  std::string moved = kManifests;
  moved.replace(moved.find("nodeName: node1"), 15, "nodeName: node2");
  const uint64_t reloads = f.source->reloads();
  std::ofstream(f.dir / "manifests" / "all.yaml.tmp") << moved;
  std::filesystem::rename(f.dir / "manifests" / "all.yaml.tmp", f.dir / "manifests" / "all.yaml");
  REQUIRE(f.source->waitForReload(reloads, std::chrono::seconds(10)));
  REQUIRE(eventually([&] { return f.link->snapshot()->version > version; }, 10s,
                     "f.link->snapshot()->version > version"));
  certs.refresh();
  auto web = certs.contextFor("demo", "web");
  REQUIRE_FALSE(web.ok());
  CHECK(std::string(web.status().message()).find("no mesh pod of demo/web on node node1") !=
        std::string::npos);
}

TEST_CASE("workload certs: renewed at half-life, not before") {
  Fixture f;
  ControllerCertificateStore certs(f.link, f.clock);
  certs.refresh();
  REQUIRE(certs.stats().issued == 1);
  auto first = certs.contextFor("demo", "web");
  REQUIRE_OK(first);
  f.clock.advance(absl::Hours(11));
  CHECK_FALSE(certs.refresh());  // installed nothing: the agent gives no memory back after it
  CHECK(certs.stats().issued == 1);
  f.clock.advance(absl::Hours(1) + absl::Minutes(1));  // past 12 h of 24 h
  CHECK(certs.refresh());
  CHECK(certs.stats().issued == 2);
  auto second = certs.contextFor("demo", "web");
  REQUIRE_OK(second);
  CHECK(second->get() != first->get());  // a new context; connections keep the old one
}

TEST_CASE("workload certs: a root rotation widens the bundle and re-issues from the new root") {
  Fixture f;
  ControllerCertificateStore certs(f.link, f.clock);
  certs.refresh();
  REQUIRE(certs.stats().issued == 1);
  REQUIRE_OK(f.server->rotateRoot());
  REQUIRE(eventually(
      [&] {
        auto s = f.link->snapshot();
        return s.has_value() && s->trust_bundle_pem.find("BEGIN CERTIFICATE") !=
                                    s->trust_bundle_pem.rfind("BEGIN CERTIFICATE");
      },
      10s,
      "auto s = f.link->snapshot(); return s.has_value() && s->trust_bundle_pem.find(\"BEGIN "
      "CERTIFICATE\") != s->trust_bundle_pem.rfind(\"BEGIN CERTIFICATE\")"));
  certs.refresh();
  auto stats = certs.stats();
  CHECK(stats.root_changes == 1);
  CHECK(stats.issued == 2);
  CHECK(stats.bundle_updates == 2);
  REQUIRE_OK(certs.contextFor("demo", "web"));
}

TEST_CASE("workload certs: a certificate made on first use is reported by the next pass") {
  Fixture f;
  ControllerCertificateStore certs(f.link, f.clock);
  REQUIRE_OK(certs.contextFor("demo", "web"));  // issued on the caller's thread
  REQUIRE(certs.stats().issued == 1);
  CHECK(certs.refresh());  // it installed nothing itself, but one was installed since
  CHECK(certs.stats().issued == 1);
  CHECK_FALSE(certs.refresh());
}

TEST_CASE("workload certs: the refreshing thread calls its hook after a round that installed") {
  Fixture f;
  ControllerCertificateStore certs(f.link, f.clock);
  std::atomic<int> calls{0};
  certs.startRefreshing(absl::Milliseconds(10), [&] { ++calls; });
  REQUIRE(eventually([&] { return certs.stats().issued == 1 && calls == 1; }, 10s,
                     "issued == 1 && calls == 1"));
  // The renewal is due. (The controller signs on the real clock, so past this fake half-life
  // every later certificate is due as well: the count goes on growing.)
  f.clock.advance(absl::Hours(12) + absl::Minutes(1));
  REQUIRE(eventually([&] { return calls >= 2; }, 10s, "calls >= 2"));
}

}  // namespace
}  // namespace ferry::agent
