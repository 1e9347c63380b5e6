// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The mode without a controller: each agent reads the manifests folder and certificate files
// itself (--manifests, --certs). Every other e2e suite runs the way users do, with
// ferry-controller feeding the agents; this one keeps the folder path honest: traffic through
// a Service and to a pod across nodes and on one node, and a policy change taking effect.
#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "e2e/manifests.h"
#include "e2e/mesh.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

bool echoWorks(Mesh& m, const harness::Pod& from, const std::string& host, int port) {
  auto out = m.run(from, {"/usr/bin/python3", meshAppsScript(), "send", "--host=" + host,
                          absl::StrCat("--port=", port), "--text=folder mode"});
  return out.ok() && out->find("OK") != std::string::npos;
}

TEST_CASE("folder mode: agents without a controller carry traffic and apply policy changes",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  MeshOptions options;
  options.controller = false;
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  CHECK_FALSE(m.controllerRunning());
  REQUIRE_OK(m.startApp(m.pod(2, 1), {"echo-server", "--port=8080"}, 8080));
  // Through the Service, to the pod across nodes, and to it from its own node.
  CHECK(echoWorks(m, m.pod(1, 1), kWebVip, 80));
  CHECK(echoWorks(m, m.pod(1, 2), m.pod(2, 1).ipv4, 8080));
  CHECK(echoWorks(m, m.pod(2, 2), m.pod(2, 1).ipv4, 8080));
  CHECK(m.stat(1, "outbound_hbone") == 2);
  CHECK(m.stat(2, "outbound_same_node") == 1);
  CHECK(m.stat(2, "tls_handshakes_server") >= 1);

  const std::string deny = n2p1Policy("deny-n1p2", "DENY", R"(  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sa-n1p2"]
)");
  REQUIRE_OK(m.applyManifest("deny-n1p2.yaml", deny));
  CHECK_FALSE(echoWorks(m, m.pod(1, 2), m.pod(2, 1).ipv4, 8080));
  CHECK(echoWorks(m, m.pod(1, 1), m.pod(2, 1).ipv4, 8080));
  CHECK(m.stat(2, "policy_denied") == 1);
  REQUIRE_OK(m.removeManifest("deny-n1p2.yaml"));
  CHECK(echoWorks(m, m.pod(1, 2), m.pod(2, 1).ipv4, 8080));
}

}  // namespace
}  // namespace ferry::e2e
