// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Authorization across nodes and on one node, and the inbound mTLS mode for plaintext.
#include <catch2/catch.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "e2e/manifests.h"
#include "e2e/mesh.h"
#include "enroll/client.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

bool echoWorks(Mesh& m, const harness::Pod& from, const harness::Pod& to) {
  auto out = m.run(from, {"/usr/bin/python3", meshAppsScript(), "send", "--host=" + to.ipv4,
                          "--port=8080", "--text=policy check"});
  return out.ok() && out->find("OK") != std::string::npos;
}

TEST_CASE("cross-node: an ALLOW policy admits its principal and refuses the others",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  absl::Status app = m.startApp(m.pod(2, 1), {"echo-server", "--port=8080"}, 8080);
  REQUIRE_OK(app);
  CHECK(echoWorks(m, m.pod(1, 1), m.pod(2, 1)));  // no policy: allowed
  absl::Status applied = m.applyManifest("policy-allow.yaml", kAllowOnlyN1p2);
  REQUIRE_OK(applied);
  CHECK(echoWorks(m, m.pod(1, 2), m.pod(2, 1)));
  CHECK_FALSE(echoWorks(m, m.pod(1, 1), m.pod(2, 1)));
  CHECK(m.stat(2, "policy_denied") == 1);
  absl::Status removed = m.removeManifest("policy-allow.yaml");
  REQUIRE_OK(removed);
  CHECK(echoWorks(m, m.pod(1, 1), m.pod(2, 1)));
}

TEST_CASE("same node: no TLS handshake, but policy still applies", "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  absl::Status app = m.startApp(m.pod(1, 2), {"echo-server", "--port=8080"}, 8080);
  REQUIRE_OK(app);
  CHECK(echoWorks(m, m.pod(1, 1), m.pod(1, 2)));
  CHECK(m.stat(1, "outbound_same_node") == 1);
  CHECK(m.stat(1, "tls_handshakes_client") == 0);
  CHECK(m.stat(1, "tls_handshakes_server") == 0);
  absl::Status applied = m.applyManifest("policy-deny.yaml", kDenyN1p1ToN1p2);
  REQUIRE_OK(applied);
  CHECK_FALSE(echoWorks(m, m.pod(1, 1), m.pod(1, 2)));
  CHECK(m.stat(1, "policy_denied") == 1);
  CHECK(m.stat(1, "tls_handshakes_client") == 0);
}

TEST_CASE("plaintext inbound: PERMISSIVE serves it, STRICT refuses it", "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  absl::Status app = m.startApp(m.pod(2, 1), {"echo-server", "--port=8080"}, 8080);
  REQUIRE_OK(app);
  // n2p2 leaves the mesh: its connections are no longer captured, so they arrive at n2p1 as
  // plaintext and sk_lookup hands them to the agent's 15006.
  absl::Status del = enroll::delPod(m.enrollSocket(2), Mesh::uidOf(m.pod(2, 2)));
  REQUIRE_OK(del);
  CHECK(echoWorks(m, m.pod(2, 2), m.pod(2, 1)));
  CHECK(m.stat(2, "inbound_plain_accepted") == 1);
  absl::Status strict = m.applyManifest("peer-auth.yaml", R"(apiVersion: security.ferry.dev/v1alpha1
kind: PeerAuthentication
metadata:
  name: default
  namespace: default
spec:
  mtls:
    mode: STRICT
)");
  REQUIRE_OK(strict);
  CHECK_FALSE(echoWorks(m, m.pod(2, 2), m.pod(2, 1)));
  CHECK(m.stat(2, "inbound_plain_refused_strict") == 1);
  // Mesh traffic (HBONE) is unaffected by STRICT.
  CHECK(echoWorks(m, m.pod(1, 1), m.pod(2, 1)));
}

const std::string kAnyPeerToN2p1 = n2p1Policy("any-peer", "ALLOW", R"(  - from:
    - source:
        principals: ["*"]
)");

// Names n1p2 only; its HTTP-only field is dropped on the TCP port 8080 (Istio's TCP task).
const std::string kDenyGetFromN1p2 = n2p1Policy("deny-get-n1p2", "DENY", R"(  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sa-n1p2"]
    to:
    - operation:
        methods: ["GET"]
)");

TEST_CASE(
    "TCP port: ALLOW principals * refuses a plaintext peer, and a DENY with methods keeps "
    "its principals",
    "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  absl::Status app = m.startApp(m.pod(2, 1), {"echo-server", "--port=8080"}, 8080);
  REQUIRE_OK(app);
  // n2p2 leaves the mesh: it reaches n2p1 as a plaintext peer, without an identity.
  absl::Status del = enroll::delPod(m.enrollSocket(2), Mesh::uidOf(m.pod(2, 2)));
  REQUIRE_OK(del);
  CHECK(echoWorks(m, m.pod(2, 2), m.pod(2, 1)));  // no policy: allowed

  // "Any authenticated peer": the plaintext peer is refused (it was let in before issue 16),
  // mesh peers still get in.
  absl::Status any_peer = m.applyManifest("policy-any-peer.yaml", kAnyPeerToN2p1);
  REQUIRE_OK(any_peer);
  CHECK_FALSE(echoWorks(m, m.pod(2, 2), m.pod(2, 1)));
  CHECK(m.stat(2, "policy_denied") == 1);
  CHECK(echoWorks(m, m.pod(1, 1), m.pod(2, 1)));
  absl::Status removed = m.removeManifest("policy-any-peer.yaml");
  REQUIRE_OK(removed);

  // A DENY naming GET from n1p2: on this TCP port the method is dropped and the principal
  // stays, so n1p1 (not named) connects and n1p2 is refused.
  absl::Status deny = m.applyManifest("policy-deny-get.yaml", kDenyGetFromN1p2);
  REQUIRE_OK(deny);
  CHECK(echoWorks(m, m.pod(1, 1), m.pod(2, 1)));
  CHECK_FALSE(echoWorks(m, m.pod(1, 2), m.pod(2, 1)));
  CHECK(m.stat(2, "policy_denied") == 2);
}

}  // namespace
}  // namespace ferry::e2e
