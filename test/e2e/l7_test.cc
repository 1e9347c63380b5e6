// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// L7 (HTTP) authorization through the mesh: the destination's agent runs every request on an
// HTTP port (Service port name or appProtocol) through the HTTP/1 or HTTP/2 filter and the
// policy engine, with the source identity verified by mTLS.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "e2e/manifests.h"
#include "e2e/mesh.h"
#include "eventually.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

using ferry::testing::eventually;
using namespace std::chrono_literals;

constexpr uint16_t kHttp1Port = 9080;
constexpr uint16_t kHttp2Port = 9081;
constexpr uint16_t kTcpPort = 9082;

constexpr char kDenyPrivateForN1p2[] = R"(apiVersion: security.ferry.dev/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: deny-private-n1p2
  namespace: default
spec:
  selector:
    matchLabels:
      app: n2p1
  action: DENY
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sa-n1p2"]
    to:
    - operation:
        paths: ["/private*"]
)";

constexpr char kAllowGetFromNode1[] = R"(apiVersion: security.ferry.dev/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: allow-get
  namespace: default
spec:
  selector:
    matchLabels:
      app: n2p1
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sa-n1p1", "cluster.local/ns/default/sa/sa-n1p2"]
    to:
    - operation:
        methods: ["GET"]
)";

struct Response {
  int status = 0;
  int local_port = 0;  // the client's port: equal across rows means one connection
  std::string body;
};

// GETs `paths` in order on one keep-alive connection from `from` to n2p1:9080.
absl::StatusOr<std::vector<Response>> getAll(Mesh& m, const harness::Pod& from,
                                             const std::vector<std::string>& paths) {
  auto out =
      m.run(from, {"/usr/bin/python3", meshAppsScript(), "http-get", "--host=" + m.pod(2, 1).ipv4,
                   absl::StrCat("--port=", kHttp1Port), "--text=" + absl::StrJoin(paths, " ")});
  if (!out.ok()) {
    return out.status();
  }
  std::vector<Response> rows;
  for (absl::string_view line : absl::StrSplit(*out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits(' ', 2));
    Response r;
    r.status = std::stoi(f.at(0));
    r.local_port = std::stoi(f.at(1));
    r.body = f.size() > 2 ? f[2] : "";
    rows.push_back(r);
  }
  return rows;
}

std::unique_ptr<Mesh> startMeshWithApi() {
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE_OK(m.applyManifest("service-api.yaml", kApiService));
  REQUIRE_OK(
      m.startApp(m.pod(2, 1), {"http-server", absl::StrCat("--port=", kHttp1Port)}, kHttp1Port));
  return std::move(*mesh);
}

TEST_CASE("L7 HTTP/1: 200 allowed, 403 with body denied, keep-alive survives, by principal",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startMeshWithApi();
  Mesh& m = *mesh;
  REQUIRE_OK(m.applyManifest("deny-admin.yaml", kDenyAdmin));
  REQUIRE_OK(m.applyManifest("deny-private.yaml", kDenyPrivateForN1p2));
  REQUIRE_OK(m.applyManifest("allow-get.yaml", kAllowGetFromNode1));

  // n1p1 (cross-node, mTLS): one connection, a 403 in the middle, and the normalized path is
  // the one the app receives.
  auto rows = getAll(m, m.pod(1, 1),
                     {"/hello", "/admin", "//admin", "/%61dmin", "/a/../hello", "/private/x"});
  REQUIRE_OK(rows);
  REQUIRE(rows->size() == 6);
  CHECK((*rows)[0].status == 200);
  CHECK((*rows)[0].body == "path=/hello");
  for (int i : {1, 2, 3}) {
    INFO("row " << i);
    CHECK((*rows)[i].status == 403);
    CHECK((*rows)[i].body == "RBAC: access denied");
  }
  CHECK((*rows)[4].status == 200);
  CHECK((*rows)[4].body == "path=/hello");
  CHECK((*rows)[5].status == 200);  // /private is denied to n1p2 only
  for (const Response& r : *rows) {
    CHECK(r.local_port == (*rows)[0].local_port);  // the connection survived every 403
  }

  // n1p2: same requests, its principal is denied /private.
  auto n1p2 = getAll(m, m.pod(1, 2), {"/private/x", "/hello"});
  REQUIRE_OK(n1p2);
  REQUIRE(n1p2->size() == 2);
  CHECK((*n1p2)[0].status == 403);
  CHECK((*n1p2)[0].body == "RBAC: access denied");
  CHECK((*n1p2)[1].status == 200);

  // n2p2 is in no ALLOW rule: decided at L4, the connection is refused.
  auto n2p2 = getAll(m, m.pod(2, 2), {"/hello"});
  CHECK_FALSE(n2p2.ok());
  CHECK(m.stat(2, "http_requests_denied") >= 3);
  CHECK(m.stat(2, "http_requests_allowed") >= 3);
  CHECK(m.stat(2, "policy_denied") >= 1);
}

// Sends `request` as raw bytes from `from` to n2p1:9080 and returns all it got back.
std::string rawRequest(Mesh& m, const harness::Pod& from, const std::string& request) {
  auto out =
      m.run(from, {"/usr/bin/python3", meshAppsScript(), "http-raw", "--host=" + m.pod(2, 1).ipv4,
                   absl::StrCat("--port=", kHttp1Port), "--text=" + request});
  REQUIRE_OK(out);
  return *out;
}

TEST_CASE("L7 HTTP/1: CONNECT is authorized on its target and opens only where a rule names it",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startMeshWithApi();
  Mesh& m = *mesh;
  REQUIRE_OK(
      m.applyManifest("deny-admin-host.yaml", n2p1Policy("deny-admin-host", "DENY", R"(  - to:
    - operation:
        hosts: ["admin.example"]
)")));
  const harness::Pod& client = m.pod(1, 1);  // cross-node: mTLS, then n2's HTTP filter
  auto denied = [](const std::string& response) {
    return response.starts_with("HTTP/1.1 403 Forbidden\r\n") &&
           response.ends_with("RBAC: access denied");
  };
  // The bypass: a denied target behind a harmless Host.
  std::string bypass =
      rawRequest(m, client, "CONNECT admin.example:80 HTTP/1.1\r\nHost: harmless.example\r\n\r\n");
  INFO(bypass);
  CHECK(denied(bypass));
  CHECK(bypass.find("tunnel=") == std::string::npos);  // the app never saw it
  // A harmless target: no rule names CONNECT, so no tunnel opens on an HTTP port.
  std::string harmless = rawRequest(
      m, client, "CONNECT harmless.example:80 HTTP/1.1\r\nHost: harmless.example\r\n\r\n");
  CHECK(denied(harmless));
  // Host shapes that escaped the host rule; each connection closes after its answer.
  for (const char* host : {"admin.example.", "admin.example:", "ADMIN.example.:9080"}) {
    INFO(host);
    std::string r = rawRequest(
        m, client,
        absl::StrCat("GET /x HTTP/1.1\r\nHost: ", host, "\r\nConnection: close\r\n\r\n"));
    CHECK(denied(r));
  }
  // Allowed: the app receives the Host in normal form.
  std::string ok = rawRequest(
      m, client, "GET /x HTTP/1.1\r\nHost: Harmless.Example.:\r\nConnection: close\r\n\r\n");
  CHECK(ok.starts_with("HTTP/1.1 200 "));
  CHECK(ok.find("X-Seen-Host: harmless.example\r\n") != std::string::npos);
  // No Host and no authority in the target: 400, whatever the version.
  CHECK(rawRequest(m, client, "GET /x HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 400 "));
  const int64_t denied_before = m.stat(2, "http_requests_denied");
  CHECK(denied_before >= 5);

  // A rule naming CONNECT and the target host opens the tunnel; the app sees the target in
  // normal form, as Host too.
  REQUIRE_OK(m.applyManifest("allow-connect.yaml", n2p1Policy("allow-connect", "ALLOW", R"(  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sa-n1p1"]
    to:
    - operation:
        methods: ["CONNECT"]
        hosts: ["harmless.example"]
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sa-n1p1"]
    to:
    - operation:
        methods: ["GET"]
)")));
  std::string tunnel =
      rawRequest(m, client, "CONNECT Harmless.Example.:80 HTTP/1.1\r\nHost: x\r\n\r\n");
  INFO(tunnel);
  CHECK(tunnel.starts_with("HTTP/1.1 200 "));
  CHECK(tunnel.ends_with("tunnel=harmless.example:80 host=harmless.example:80"));
  // Still denied: the DENY on the target host wins over the rule naming CONNECT.
  CHECK(denied(rawRequest(m, client,
                          "CONNECT admin.example:80 HTTP/1.1\r\nHost: harmless.example\r\n\r\n")));
  CHECK(m.stat(2, "http_requests_denied") == denied_before + 1);
}

TEST_CASE("L7 HTTP/2: a denied stream next to an allowed one on the same connection",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startMeshWithApi();
  Mesh& m = *mesh;
  std::string docroot = m.cluster().scratchDir() + "/h2-docroot";
  std::filesystem::create_directories(docroot + "/admin");
  std::ofstream(docroot + "/hello") << "hello over h2\n";
  std::ofstream(docroot + "/admin/secret") << "secret\n";
  REQUIRE_OK(m.startServer(
      m.pod(2, 1), {"/usr/sbin/nghttpd", "--no-tls", "-d", docroot, std::to_string(kHttp2Port)},
      kHttp2Port));
  REQUIRE_OK(m.applyManifest("deny-admin.yaml", kDenyAdmin));
  std::string base = absl::StrCat("http://", m.pod(2, 1).ipv4, ":", kHttp2Port);
  // nghttp sends every URI of one authority as a stream of one h2c (prior knowledge)
  // connection (it fetches a repeated URI once, hence the query).
  auto out = m.run(m.pod(1, 1), {"/usr/bin/nghttp", "-v", "-n", base + "/hello",
                                 base + "/admin/secret", base + "/hello?again"});
  REQUIRE_OK(out);
  // "[  0.012] recv (stream_id=13) :status: 403": one status per stream, in stream order.
  std::map<int, std::string> status_by_stream;
  for (absl::string_view line : absl::StrSplit(*out, '\n')) {
    size_t id = line.find("recv (stream_id=");
    size_t st = line.find(":status: ");
    if (id != absl::string_view::npos && st != absl::string_view::npos) {
      int stream = std::atoi(std::string(line.substr(id + 16)).c_str());
      status_by_stream[stream] = std::string(line.substr(st + 9, 3));
    }
  }
  INFO(*out);
  REQUIRE(status_by_stream.size() == 3);
  std::vector<std::string> statuses;
  for (const auto& [stream, status] : status_by_stream) {
    statuses.push_back(status);
  }
  CHECK(statuses == std::vector<std::string>{"200", "403", "200"});
  CHECK(m.stat(2, "http_connections") == 1);
  CHECK(m.stat(2, "http_requests_denied") == 1);
}

TEST_CASE("L7: ports not marked HTTP keep L4 behaviour", "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startMeshWithApi();
  Mesh& m = *mesh;
  REQUIRE_OK(m.startApp(m.pod(2, 1), {"echo-server", absl::StrCat("--port=", kTcpPort)}, kTcpPort));
  // A DENY on paths applies to every connection of a non-HTTP port (Istio's L4 reading).
  auto send = [&] {
    auto out = m.run(m.pod(1, 1),
                     {"/usr/bin/python3", meshAppsScript(), "send", "--host=" + m.pod(2, 1).ipv4,
                      absl::StrCat("--port=", kTcpPort), "--text=not http"});
    return out.ok() && out->find("OK") != std::string::npos;
  };
  CHECK(send());
  CHECK(m.stat(2, "http_connections") == 0);
  REQUIRE_OK(m.applyManifest("deny-admin.yaml", kDenyAdmin));
  CHECK_FALSE(send());
  CHECK(m.stat(2, "policy_denied") == 1);
}

constexpr char kDenyNode1p1AndN2p2[] = R"(apiVersion: security.ferry.dev/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: deny-clients
  namespace: default
spec:
  selector:
    matchLabels:
      app: n2p1
  action: DENY
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sa-n1p1", "cluster.local/ns/default/sa/sa-n2p2"]
)";

TEST_CASE("a policy change closes open connections it no longer allows", "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startMeshWithApi();
  Mesh& m = *mesh;
  REQUIRE_OK(m.startApp(m.pod(2, 1), {"echo-server", absl::StrCat("--port=", kTcpPort)}, kTcpPort));
  auto holdFrom = [&](const harness::Pod& from) {
    auto p = m.cluster().spawn(
        from, {"/usr/bin/python3", meshAppsScript(), "hold-until-closed",
               "--host=" + m.pod(2, 1).ipv4, absl::StrCat("--port=", kTcpPort), "--count=20"});
    REQUIRE_OK(p);
    return std::move(*p);
  };
  // Cross-node (an HBONE stream) and same-node (a local relay), plus n1p2, still allowed.
  auto remote = holdFrom(m.pod(1, 1));
  auto local = holdFrom(m.pod(2, 2));
  auto kept = holdFrom(m.pod(1, 2));
  for (auto* p : {remote.get(), local.get(), kept.get()}) {
    REQUIRE(eventually([&] { return p->log().find("OPEN") != std::string::npos; }, 10s,
                       "the held connection to report OPEN"));
  }
  REQUIRE_OK(m.applyManifest("deny-clients.yaml", kDenyNode1p1AndN2p2));
  for (auto* p : {remote.get(), local.get()}) {
    auto code = p->wait(absl::Seconds(30));
    REQUIRE_OK(code);
    CHECK(p->log() == "OPEN\nCLOSED\n");
  }
  CHECK(kept->running());
  CHECK(m.stat(2, "policy_revoked") == 2);
}

}  // namespace
}  // namespace ferry::e2e
