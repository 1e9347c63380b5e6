// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Traffic across the mesh with real clients: pod n1p1 (node1) to pod n2p1 (node2).
#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "e2e/mesh.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

TEST_CASE("cross-node echo by pod IP and by service VIP goes through HBONE", "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  const auto& client = m.pod(1, 1);
  const auto& server = m.pod(2, 1);
  absl::Status app = m.startApp(server, {"echo-server", "--port=8080"}, 8080);
  REQUIRE_OK(app);
  for (const std::string& host : {server.ipv4, server.ipv6, std::string(kWebVip)}) {
    INFO("destination " << host);
    uint16_t port = host == kWebVip ? 80 : 8080;
    auto out = m.run(client, {"/usr/bin/python3", meshAppsScript(), "send", "--host=" + host,
                              absl::StrCat("--port=", port), "--text=hello mesh"});
    REQUIRE_OK(out);
    CHECK_THAT(*out, Catch::Contains("OK"));
  }
  CHECK(m.stat(1, "outbound_hbone") == 3);
  CHECK(m.stat(2, "inbound_hbone_streams") == 3);
  CHECK(m.stat(1, "tls_handshakes_client") >= 1);
  CHECK(m.stat(2, "tls_handshakes_server") >= 1);
}

}  // namespace
}  // namespace ferry::e2e
