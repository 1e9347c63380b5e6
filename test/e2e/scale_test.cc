// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Many connections: nothing leaks, and pooled HBONE connections keep handshakes rare.
#include <catch2/catch.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "e2e/mesh.h"
#include "eventually.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

using ferry::testing::eventually;
using namespace std::chrono_literals;

// Polls (bounded, 10 s) until the node's agent has `want` descriptors open again; the last count.
int settleFds(Mesh& m, int node, int want) {
  int now = -1;
  static_cast<void>(eventually([&] { return (now = m.agentFds(node)) == want; }, 10s,
                               "the agent's descriptor count to return"));  // the caller checks
  return now;
}

TEST_CASE("1,000 concurrent connections complete and the agents' fd counts return",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  MeshOptions options;
  options.extra_agent_flags = {"--pool-idle-timeout-ms=300"};
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  absl::Status app = m.startApp(m.pod(2, 1), {"echo-server", "--port=8080"}, 8080);
  REQUIRE_OK(app);
  const int fds1 = m.agentFds(1);
  const int fds2 = m.agentFds(2);
  auto out = m.run(m.pod(1, 1),
                   {"/usr/bin/python3", meshAppsScript(), "many", "--host=" + m.pod(2, 1).ipv4,
                    "--port=8080", "--count=1000", "--concurrent"});
  REQUIRE_OK(out);
  CHECK_THAT(*out, Catch::StartsWith("OK 1000"));
  CHECK(m.stat(1, "outbound_hbone") == 1000);
  CHECK(m.stat(2, "inbound_hbone_streams") == 1000);
  // 1,000 streams at once exceed one connection's stream limit: several pooled connections.
  WARN("pooled connections opened for 1,000 concurrent streams: "
       << m.stat(1, "pool_connections_opened") << "; agent fds before: node1 " << fds1 << ", node2 "
       << fds2);
  CHECK(settleFds(m, 1, fds1) == fds1);
  CHECK(settleFds(m, 2, fds2) == fds2);
  CHECK(m.stat(1, "connections_active") == 0);
  CHECK(m.stat(2, "connections_active") == 0);
}

TEST_CASE("1,000 sequential connections to one pod cost a handful of TLS handshakes",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  absl::Status app = m.startApp(m.pod(2, 1), {"echo-server", "--port=8080"}, 8080);
  REQUIRE_OK(app);
  auto out = m.run(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "many",
                                 "--host=" + m.pod(2, 1).ipv4, "--port=8080", "--count=1000"});
  REQUIRE_OK(out);
  CHECK_THAT(*out, Catch::StartsWith("OK 1000"));
  const int64_t handshakes = m.stat(1, "tls_handshakes_client");
  WARN("TLS handshakes for 1,000 sequential connections: "
       << handshakes << " (server side: " << m.stat(2, "tls_handshakes_server") << ")");
  CHECK(handshakes >= 1);
  CHECK(handshakes <= 4);  // at most one per worker (2) plus slack for a race at start
  CHECK(m.stat(1, "pool_streams_reused") >= 996);
}

}  // namespace
}  // namespace ferry::e2e
