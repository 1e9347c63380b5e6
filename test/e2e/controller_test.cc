// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The mesh fed by a real ferry-controller process (standalone mode on the manifests folder):
// agents bootstrap with a token, get their node's state and workload certificates from it,
// survive a root rotation and the controller's absence, and follow policy changes.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "e2e/manifests.h"
#include "e2e/mesh.h"
#include "eventually.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

using ferry::testing::eventually;
using namespace std::chrono_literals;

bool echoWorks(Mesh& m, const harness::Pod& from, const harness::Pod& to) {
  auto out = m.run(from, {"/usr/bin/python3", meshAppsScript(), "send", "--host=" + to.ipv4,
                          "--port=8080", "--text=controller check"});
  return out.ok() && out->find("OK") != std::string::npos;
}

// A mesh fed by the controller, an echo server on n2p1:8080, and one request n1p1 -> n2p1.
std::unique_ptr<Mesh> startWithEcho() {
  MeshOptions options;
  options.controller = true;
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE_OK(m.startApp(m.pod(2, 1), {"echo-server", "--port=8080"}, 8080));
  REQUIRE(echoWorks(m, m.pod(1, 1), m.pod(2, 1)));
  return *std::move(mesh);
}

// A connection from `from` to `to`:8080 that made one round trip and stays open until
// release() (then makes another on the same connection).
class HeldConnection {
 public:
  HeldConnection(Mesh& m, const harness::Pod& from, const harness::Pod& to)
      : release_file_(m.cluster().scratchDir() + "/release-" + from.name) {
    auto p =
        m.cluster().spawn(from, {"/usr/bin/python3", meshAppsScript(), "hold", "--host=" + to.ipv4,
                                 "--port=8080", "--text=" + release_file_});
    REQUIRE_OK(p);
    proc_ = *std::move(p);
  }
  // Bounded (30 s; the round trip is local); false at once if the client exits without `word`.
  bool waitFor(const std::string& word) {
    auto printed = [&] { return proc_->log().find(word) != std::string::npos; };
    return eventually([&] { return printed() || !proc_->running(); }, 30s,
                      "'" + word + "' from the held connection (or its exit)") &&
           printed();
  }
  // The second round trip on the same connection succeeded.
  bool release() {
    std::ofstream(release_file_) << "go\n";
    auto rc = proc_->wait(absl::Seconds(30));
    return rc.ok() && *rc == 0 && proc_->log().find("OK") != std::string::npos;
  }
  std::string log() const { return proc_->log(); }

 private:
  std::string release_file_;
  std::unique_ptr<harness::Process> proc_;
};

const std::string kDenyN1p1 = denyN1p1On("n2p1");

TEST_CASE("controller: cross-node traffic with controller-issued certificates and a root rotation",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startWithEcho();
  Mesh& m = *mesh;
  // No certificate files exist in this mode: the identities come from the controller.
  CHECK(m.agentLog(1).find("issued spiffe://cluster.local/ns/default/sa/sa-n1p1") !=
        std::string::npos);
  CHECK(m.agentLog(2).find("issued spiffe://cluster.local/ns/default/sa/sa-n2p1") !=
        std::string::npos);
  CHECK(m.stat(2, "inbound_hbone_streams") == 1);  // encrypted cross-node (HBONE over mTLS)

  HeldConnection held(m, m.pod(1, 1), m.pod(2, 1));
  REQUIRE(held.waitFor("HELD"));
  const int64_t handshakes = m.stat(2, "tls_handshakes_server");
  REQUIRE_OK(m.rotateRoot());
  // Both roots in the bundle now.
  std::ifstream bundle(m.trustBundlePath());
  std::string pem((std::istreambuf_iterator<char>(bundle)), std::istreambuf_iterator<char>());
  CHECK(pem.find("BEGIN CERTIFICATE") != pem.rfind("BEGIN CERTIFICATE"));
  // New connections from identities that had no pooled connection: handshakes with
  // certificates from the new root on both sides.
  CHECK(echoWorks(m, m.pod(1, 2), m.pod(2, 1)));
  REQUIRE_OK(m.startApp(m.pod(1, 2), {"echo-server", "--port=8080"}, 8080));
  CHECK(echoWorks(m, m.pod(2, 2), m.pod(1, 2)));
  CHECK(m.stat(2, "tls_handshakes_server") > handshakes);
  CHECK(m.stat(1, "tls_handshake_failures") == 0);
  CHECK(m.stat(2, "tls_handshake_failures") == 0);
  // The connection opened before the rotation keeps working.
  INFO(held.log());
  CHECK(held.release());
}

TEST_CASE("controller: with the controller stopped, existing and new connections keep working",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startWithEcho();
  Mesh& m = *mesh;
  HeldConnection held(m, m.pod(1, 1), m.pod(2, 1));
  REQUIRE(held.waitFor("HELD"));
  const int64_t version = m.stat(1, "state_version");
  // Agents issue certificates for their local pods ahead of first use.
  REQUIRE(m.waitAgentLog(1, "issued spiffe://cluster.local/ns/default/sa/sa-n1p2"));

  REQUIRE_OK(m.stopController());
  // A pod that never connected: its certificate was issued ahead, its peers are known.
  CHECK(echoWorks(m, m.pod(1, 2), m.pod(2, 1)));
  CHECK(echoWorks(m, m.pod(1, 1), m.pod(2, 1)));
  CHECK(m.stat(1, "state_version") == version);  // last good state kept
  INFO(held.log());
  CHECK(held.release());

  // Back again: the agents reconnect and follow changes.
  REQUIRE_OK(m.startController());
  auto took = m.applyManifestOn("policy-deny.yaml", kDenyN1p1, {2});
  REQUIRE_OK(took);
  CHECK_FALSE(echoWorks(m, m.pod(1, 1), m.pod(2, 1)));
  CHECK(echoWorks(m, m.pod(1, 2), m.pod(2, 1)));
}

TEST_CASE("controller: a policy change in the manifest folder reaches only the agents it concerns",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startWithEcho();
  Mesh& m = *mesh;
  const int64_t node1_version = m.stat(1, "state_version");
  auto took = m.applyManifestOn("policy-deny.yaml", kDenyN1p1, {2});
  REQUIRE_OK(took);
  // Measured, not asserted: file write -> controller reload -> delta -> agent state.
  std::cout << "policy change applied on node2's agent after " << absl::FormatDuration(*took)
            << "\n";
  CHECK_FALSE(echoWorks(m, m.pod(1, 1), m.pod(2, 1)));
  CHECK(echoWorks(m, m.pod(1, 2), m.pod(2, 1)));
  CHECK(m.stat(2, "policy_denied") >= 1);
  // The policy selects a pod of node2 only: node1's view did not change.
  CHECK(m.stat(1, "state_version") == node1_version);
}

}  // namespace
}  // namespace ferry::e2e
