// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// What crosses the wire, and who the inbound side refuses.
#include <catch2/catch.hpp>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "e2e/mesh.h"
#include "e2e/wire_capture.h"
#include "harness/process.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

TEST_CASE("between nodes the bridge carries only TLS and the marker never appears in clear",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  absl::Status app = m.startApp(m.pod(2, 1), {"echo-server", "--port=8080"}, 8080);
  REQUIRE_OK(app);
  auto wire = WireCapture::start(m, "bridge");
  REQUIRE_OK(wire);

  const std::string marker = "FERRY-SECRET-MARKER-7f3a9c";
  auto sent = m.run(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "send",
                                  "--host=" + m.pod(2, 1).ipv4, "--port=8080", "--text=" + marker});
  REQUIRE_OK(sent);
  // The capture also carries a UDP control marker (UDP is not captured by the mesh), so the
  // "never in clear" check below can fail.
  absl::Status stopped = (*wire)->stop(m.pod(1, 1), m.pod(2, 1).ipv4);
  REQUIRE_OK(stopped);
  INFO("capture:\n" << (*wire)->summary());
  CHECK((*wire)->contains((*wire)->controlMarker()));
  CHECK_FALSE((*wire)->contains(marker));
  auto frames = [&](const std::string& filter) {
    auto out = (*wire)->frames(filter);
    REQUIRE_OK(out);
    return *out;
  };
  CHECK_FALSE(frames("tls.app_data").empty());  // encrypted application data
  // No TCP payload outside TLS. A retransmitted 15008 segment is dissected as plain TCP; the
  // next check still catches any payload, retransmitted or not, on a port other than 15008.
  CHECK(frames("tcp.len > 0 && !tls && !tcp.analysis.retransmission").empty());
  CHECK(frames("tcp.len > 0 && tcp.port != 15008").empty());  // only HBONE between pods
}

struct H2Case {
  std::string description;
  std::string cert;
  std::string key;
};

TEST_CASE("inbound HBONE refuses bad peers and foreign :authority and accepts a real h2 client",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  const auto& server = m.pod(2, 1);
  absl::Status app = m.startApp(server, {"echo-server", "--port=8080"}, 8080);
  REQUIRE_OK(app);
  const std::string dir = m.cluster().scratchDir() + "/clients";
  std::filesystem::create_directories(dir);
  Mesh::writeCert(dir, "good", m.ca().issue("default", "python-client"));
  fakes::FakeCa other("cluster.local");
  Mesh::writeCert(dir, "other-ca", other.issue("default", "python-client"));
  Mesh::writeCert(
      dir, "expired",
      m.ca().issue("default", "python-client", absl::Hours(1), absl::Now() - absl::Hours(3)));
  Mesh::writeCert(dir, "wrong-td",
                  m.ca().issue(tls::SpiffeId{"evil.example", "default", "python-client"}));

  // The Python client (Debian's h2 + ssl) runs inside the destination pod and dials the
  // agent's in-pod 15008 over the pod's loopback.
  auto h2 = [&](const std::string& cert, const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {"/usr/bin/python3",
                                     h2ClientScript(),
                                     "--port=15008",
                                     "--cert=" + dir + "/" + cert + ".crt",
                                     "--key=" + dir + "/" + cert + ".key",
                                     "--ca=" + m.caPemPath()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return m.cluster().run(server, argv, absl::Seconds(60));
  };
  auto ok = h2("good", {"--authority=" + server.ipv4 + ":8080", "--mode=echo"});
  REQUIRE_OK(ok);
  INFO(ok->out << ok->err);
  CHECK(ok->exit_code == 0);
  CHECK_THAT(ok->out, Catch::Contains("spiffe://cluster.local/ns/default/sa/sa-n2p1"));

  const int64_t rejected_before = m.stat(2, "tls_peer_rejected");
  for (std::string bad : {"other-ca", "expired", "wrong-td"}) {
    INFO("client certificate: " << bad);
    auto r = h2(bad, {"--authority=" + server.ipv4 + ":8080", "--mode=echo"});
    REQUIRE_OK(r);
    CHECK(r->exit_code != 0);
    CHECK_THAT(r->out, !Catch::Contains("OK"));
  }
  CHECK(m.stat(2, "tls_peer_rejected") == rejected_before + 3);

  // :authority must be this pod's own address, and not one of the agent's ports.
  for (const std::string& authority :
       {m.pod(2, 2).ipv4 + ":8080", m.pod(1, 1).ipv4 + ":8080", server.ipv4 + ":15006"}) {
    INFO(":authority " << authority);
    auto r = h2("good", {"--authority=" + authority, "--mode=expect-status", "--status=400"});
    REQUIRE_OK(r);
    INFO(r->out << r->err);
    CHECK(r->exit_code == 0);
  }
  CHECK(m.stat(2, "inbound_hbone_bad_authority") == 3);
}

}  // namespace
}  // namespace ferry::e2e
