// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Known traffic through the mesh, then the agents' telemetry: exact Istio metric values and
// labels on both reporters, the access log, policy decisions, and a real Prometheus server
// scraping an agent and answering PromQL.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "e2e/manifests.h"
#include "e2e/mesh.h"
#include "e2e/observe.h"
#include "metrics/scrape.h"
#include "privileged.h"
#include "status_testing.h"
#include "trace/traceparent.h"

namespace ferry::e2e {
namespace {

using metrics::testing::countSamples;
using metrics::testing::sampleValue;

constexpr int kConnections = 5;
// Refuses n1p2's identity at n2p1.
const std::string kDenyN1p2 = n2p1Policy("deny-n1p2", "DENY", R"(  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sa-n1p2"]
)");

// sha-client sends kUpBytes; sha-server answers a 65-byte sha line and kUpBytes more. The two
// directions differ, so a swapped sent/received shows.
constexpr int kUpBytes = 1000;
constexpr int kDownBytes = kUpBytes + 65;

// Istio's labels for traffic from n1p1 to n2p1 through `service` (in default).
std::map<std::string, std::string> meshLabels(const std::string& reporter,
                                              const std::string& service,
                                              const std::string& protocol) {
  return {{"reporter", reporter},
          {"source_workload", "n1p1"},
          {"source_workload_namespace", "default"},
          {"source_principal", "spiffe://cluster.local/ns/default/sa/sa-n1p1"},
          {"source_app", "n1p1"},
          {"destination_workload", "n2p1"},
          {"destination_workload_namespace", "default"},
          {"destination_principal", "spiffe://cluster.local/ns/default/sa/sa-n2p1"},
          {"destination_app", "n2p1"},
          {"destination_service", service + ".default.svc.cluster.local"},
          {"destination_service_name", service},
          {"destination_service_namespace", "default"},
          {"request_protocol", protocol},
          {"connection_security_policy", "mutual_tls"}};
}

std::map<std::string, std::string> webLabels(const std::string& reporter) {
  return meshLabels(reporter, "web", "tcp");
}

TEST_CASE("after known TCP traffic both agents' metrics show exact counts, bytes and labels",
          "[privileged][e2e][telemetry]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE_OK(m.startApp(m.pod(2, 1),
                        {"sha-server", "--port=8080", absl::StrCat("--bytes=", kUpBytes)}, 8080));
  for (int i = 0; i < kConnections; ++i) {
    auto out = m.run(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "sha-client",
                                   absl::StrCat("--host=", kWebVip), "--port=80",
                                   absl::StrCat("--bytes=", kUpBytes)});
    REQUIRE_OK(out);
    REQUIRE_THAT(*out, Catch::Contains("OK"));
  }
  for (auto [node, reporter] : {std::pair{1, "source"}, std::pair{2, "destination"}}) {
    INFO("node" << node << " reporter " << reporter);
    auto labels = webLabels(reporter);
    // The close is counted when the agent's relay finishes, just after the client returns.
    std::string text = scrapeUntil(m.metricsPort(node), "istio_tcp_connections_closed_total",
                                   labels, kConnections);
    CHECK(sampleValue(text, "istio_tcp_connections_opened_total", labels) == kConnections);
    CHECK(sampleValue(text, "istio_tcp_connections_closed_total", labels) == kConnections);
    // Istio's directions on both reporters: received during the request (from the source),
    // sent during the response (to it).
    CHECK(sampleValue(text, "istio_tcp_received_bytes_total", labels) == kConnections * kUpBytes);
    CHECK(sampleValue(text, "istio_tcp_sent_bytes_total", labels) == kConnections * kDownBytes);
    CHECK(sampleValue(text, "ferry_ready", {}) == 1);
    CHECK(sampleValue(text, "ferry_bpf_attached", {}) == 1);
  }
  std::string node1 = scrapeUntil(m.metricsPort(1), "istio_tcp_connections_closed_total",
                                  webLabels("source"), kConnections);
  CHECK(sampleValue(node1, "ferry_bpf_events_total", {{"event", "connect_captured"}}) >=
        kConnections);
  CHECK(sampleValue(node1, "ferry_outbound_routes_total", {{"route", "hbone"}}) == kConnections);
  CHECK(sampleValue(node1, "ferry_tls_handshakes_total", {{"side", "client"}}) >= 1);
  CHECK(sampleValue(node1, "ferry_certificate_expiration_timestamp_seconds",
                    {{"identity", "spiffe://cluster.local/ns/default/sa/sa-n1p1"}}) > 0);
  // No ALLOW policy selects n2p1: allowed by default, decided at the destination only.
  std::string node2 = scrapeUntil(m.metricsPort(2), "istio_tcp_connections_closed_total",
                                  webLabels("destination"), kConnections);
  CHECK(sampleValue(node2, "ferry_policy_decisions_total",
                    {{"policy", "none"}, {"action", "none"}, {"decision", "allow"}}) ==
        kConnections);
  CHECK(sampleValue(node1, "ferry_policy_decisions_total", {}) == std::nullopt);

  // One access-log line per connection on each side, with the same byte counts.
  std::vector<nlohmann::json> lines = accessLogLines(m.agentLog(2));
  int connections = 0;
  for (const auto& j : lines) {
    if (j["kind"] == "connection" && j["destination"]["workload"] == "n2p1") {
      ++connections;
      CHECK(j["reporter"] == "destination");
      CHECK(j["bytes_received"] == kUpBytes);
      CHECK(j["bytes_sent"] == kDownBytes);
      CHECK(j["source"]["principal"] == "spiffe://cluster.local/ns/default/sa/sa-n1p1");
      // Each connection's own addresses beside the record its connections share.
      CHECK(j["source"]["address"] == m.pod(1, 1).ipv4);
      CHECK(j["destination"]["address"] == absl::StrCat(m.pod(2, 1).ipv4, ":8080"));
    }
  }
  CHECK(connections == kConnections);
  // The source's lines too name the calling pod (by its address; the agents log no port).
  int source_lines = 0;
  for (const auto& j : accessLogLines(m.agentLog(1))) {
    if (j["kind"] == "connection" && j["destination"]["workload"] == "n2p1") {
      ++source_lines;
      CHECK(j["source"]["address"] == m.pod(1, 1).ipv4);
    }
  }
  CHECK(source_lines == kConnections);
}

constexpr char kClusterName[] = "e2e-west";

// n1p2 with Istio's canonical-service labels and a version, as its manifest.
std::string labelledCallerManifest(const harness::Pod& p) {
  return absl::StrCat(
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ", p.name,
      "\n  namespace: default\n  uid: ", Mesh::uidOf(p), "\n  labels:\n    app: ", p.name,
      "\n    version: v9\n    service.istio.io/canonical-name: caller\n"
      "    service.istio.io/canonical-revision: r7\nspec:\n  nodeName: node",
      p.node, "\n  serviceAccountName: ", Mesh::saOf(p), "\nstatus:\n  podIP: ", p.ipv4,
      "\n  podIPs:\n  - ip: ", p.ipv4, "\n  - ip: ", p.ipv6, "\n");
}

TEST_CASE("controller mode: a caller behind no Service is named exactly at the destination",
          "[privileged][e2e][telemetry]") {
  FERRY_REQUIRE_ROOT();
  MeshOptions options;
  options.controller = true;
  options.extra_agent_flags = {absl::StrCat("--cluster-name=", kClusterName)};
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  const harness::Pod& caller = m.pod(1, 2);  // no Service selects it
  const harness::Pod& server = m.pod(2, 2);  // reached by pod address: no Service either
  REQUIRE_OK(
      m.applyManifest(absl::StrCat("pod-", caller.name, ".yaml"), labelledCallerManifest(caller)));
  REQUIRE_OK(
      m.startApp(server, {"sha-server", "--port=8080", absl::StrCat("--bytes=", kUpBytes)}, 8080));
  for (int i = 0; i < kConnections; ++i) {
    auto out =
        m.run(caller, {"/usr/bin/python3", meshAppsScript(), "sha-client", "--host=" + server.ipv4,
                       "--port=8080", absl::StrCat("--bytes=", kUpBytes)});
    REQUIRE_OK(out);
    REQUIRE_THAT(*out, Catch::Contains("OK"));
  }
  const std::map<std::string, std::string> labels = {
      {"source_workload", "n1p2"},
      {"source_workload_namespace", "default"},
      {"source_principal", "spiffe://cluster.local/ns/default/sa/sa-n1p2"},
      {"source_app", "n1p2"},
      {"source_version", "v9"},
      {"source_cluster", kClusterName},
      {"source_canonical_service", "caller"},
      {"source_canonical_revision", "r7"},
      {"destination_workload", "n2p2"},
      {"destination_workload_namespace", "default"},
      {"destination_principal", "spiffe://cluster.local/ns/default/sa/sa-n2p2"},
      {"destination_app", "n2p2"},
      {"destination_version", "unknown"},
      {"destination_cluster", kClusterName},
      {"destination_canonical_service", "n2p2"},
      {"destination_canonical_revision", "latest"},
      {"destination_service", "unknown"},
      {"request_protocol", "tcp"},
      {"response_flags", "-"},
      {"connection_security_policy", "mutual_tls"}};
  for (auto [node, reporter] : {std::pair{2, "destination"}, std::pair{1, "source"}}) {
    INFO("node" << node << " reporter " << reporter);
    auto with_reporter = labels;
    with_reporter["reporter"] = reporter;
    std::string text = scrapeUntil(m.metricsPort(node), "istio_tcp_connections_closed_total",
                                   with_reporter, kConnections);
    auto opened = sampleValue(text, "istio_tcp_connections_opened_total", with_reporter);
    auto closed = sampleValue(text, "istio_tcp_connections_closed_total", with_reporter);
    auto received = sampleValue(text, "istio_tcp_received_bytes_total", with_reporter);
    auto sent = sampleValue(text, "istio_tcp_sent_bytes_total", with_reporter);
    std::cout << "controller mode, " << reporter << " reporter, n1p2 -> n2p2: opened "
              << opened.value_or(-1) << ", closed " << closed.value_or(-1) << ", received "
              << received.value_or(-1) << " B, sent " << sent.value_or(-1) << " B\n";
    CHECK(opened == kConnections);
    CHECK(closed == kConnections);
    CHECK(received == kConnections * kUpBytes);
    CHECK(sent == kConnections * kDownBytes);
    // Nothing was reported under an unknown source.
    CHECK(sampleValue(text, "istio_tcp_connections_opened_total",
                      {{"reporter", reporter}, {"source_workload", "unknown"}}) == std::nullopt);
    CHECK(sampleValue(text, "ferry_baggage_rejected_total", {}) == 0);
  }
  int logged = 0;
  for (const auto& j : accessLogLines(m.agentLog(2))) {
    if (j["kind"] == "connection" && j["destination"]["workload"] == "n2p2") {
      ++logged;
      CHECK(j["source"]["workload"] == "n1p2");
      CHECK(j["source"]["namespace"] == "default");
      CHECK(j["bytes_received"] == kUpBytes);
      CHECK(j["bytes_sent"] == kDownBytes);
    }
  }
  CHECK(logged == kConnections);
}

TEST_CASE(
    "controller mode: CONNECT baggage names a caller the node does not know, forged "
    "baggage is reported as what the certificate proves",
    "[privileged][e2e][telemetry]") {
  FERRY_REQUIRE_ROOT();
  MeshOptions options;
  options.controller = true;
  options.extra_agent_flags = {absl::StrCat("--cluster-name=", kClusterName)};
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  const harness::Pod& server = m.pod(2, 1);
  REQUIRE_OK(m.startApp(server, {"echo-server", "--port=8080"}, 8080));
  const std::string dir = m.cluster().scratchDir() + "/baggage-clients";
  std::filesystem::create_directories(dir);
  // Signed by the controller's root: the identity default/python-client, on no pod at all.
  Mesh::writeCert(dir, "client", m.ca().issue("default", "python-client"));
  constexpr int kBytes = 3000;
  // A Python HBONE client in n2p1's namespace dials the agent over the pod's loopback: its
  // address (127.0.0.1) is no pod's, so only baggage can name it.
  auto connect = [&](const std::string& baggage) {
    auto r =
        m.cluster().run(server,
                        {"/usr/bin/python3", h2ClientScript(), "--port=15008",
                         "--cert=" + dir + "/client.crt", "--key=" + dir + "/client.key",
                         "--ca=" + m.trustBundlePath(), "--authority=" + server.ipv4 + ":8080",
                         "--mode=echo", absl::StrCat("--bytes=", kBytes), "--baggage=" + baggage},
                        absl::Seconds(60));
    REQUIRE_OK(r);
    INFO(r->out << r->err);
    REQUIRE(r->exit_code == 0);
  };
  const std::string kPrincipal = "spiffe://cluster.local/ns/default/sa/python-client";
  connect(
      "k8s.cluster.name=east,k8s.namespace.name=default,k8s.deployment.name=py-caller,"
      "k8s.serviceaccount.name=python-client,service.name=py-svc,service.version=p1,"
      "k8s.pod.label.app=py");
  const std::map<std::string, std::string> believed = {{"reporter", "destination"},
                                                       {"source_workload", "py-caller"},
                                                       {"source_workload_namespace", "default"},
                                                       {"source_principal", kPrincipal},
                                                       {"source_app", "py"},
                                                       {"source_cluster", "east"},
                                                       {"source_canonical_service", "py-svc"},
                                                       {"source_canonical_revision", "p1"},
                                                       {"destination_workload", "n2p1"},
                                                       {"destination_cluster", kClusterName}};
  std::string text =
      scrapeUntil(m.metricsPort(2), "istio_tcp_connections_closed_total", believed, 1);
  CHECK(sampleValue(text, "istio_tcp_connections_opened_total", believed) == 1);
  CHECK(sampleValue(text, "istio_tcp_received_bytes_total", believed) == kBytes);
  CHECK(sampleValue(text, "istio_tcp_sent_bytes_total", believed) == kBytes);
  CHECK(sampleValue(text, "ferry_baggage_rejected_total", {}) == 0);

  // The same certificate claiming another namespace and account: ignored and counted; the
  // report holds what the certificate proves (its namespace and principal), nothing more.
  connect(
      "k8s.cluster.name=east,k8s.namespace.name=kube-system,k8s.deployment.name=admin,"
      "k8s.serviceaccount.name=admin,service.name=admin");
  const std::map<std::string, std::string> proven = {{"reporter", "destination"},
                                                     {"source_workload", "unknown"},
                                                     {"source_workload_namespace", "default"},
                                                     {"source_principal", kPrincipal},
                                                     {"source_app", "unknown"},
                                                     {"source_cluster", "unknown"},
                                                     {"source_canonical_service", "unknown"},
                                                     {"destination_workload", "n2p1"},
                                                     {"destination_cluster", kClusterName}};
  text = scrapeUntil(m.metricsPort(2), "istio_tcp_connections_closed_total", proven, 1);
  CHECK(sampleValue(text, "istio_tcp_connections_opened_total", proven) == 1);
  CHECK(sampleValue(text, "istio_tcp_received_bytes_total", proven) == kBytes);
  CHECK(sampleValue(text, "istio_tcp_sent_bytes_total", proven) == kBytes);
  CHECK(sampleValue(text, "ferry_baggage_rejected_total", {}) == 1);
  CHECK(sampleValue(text, "istio_tcp_connections_opened_total", {{"source_workload", "admin"}}) ==
        std::nullopt);
  CHECK(sampleValue(text, "istio_tcp_connections_opened_total",
                    {{"source_workload_namespace", "kube-system"}}) == std::nullopt);
  CHECK(m.waitAgentLog(2, "baggage ignored: namespace \"kube-system\" is not the certificate's"));
  std::cout << "forged baggage: source_workload=unknown source_workload_namespace=default "
               "source_principal="
            << kPrincipal << ", ferry_baggage_rejected_total "
            << sampleValue(text, "ferry_baggage_rejected_total", {}).value_or(-1) << "\n";
}

TEST_CASE("denied connections count as decisions of the deciding policy, not as connections",
          "[privileged][e2e][telemetry]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE_OK(m.startApp(m.pod(2, 1), {"echo-server", "--port=8080"}, 8080));
  REQUIRE_OK(m.applyManifest("deny-n1p2.yaml", kDenyN1p2));
  constexpr int kDenied = 3;
  for (int i = 0; i < kDenied; ++i) {
    auto out = m.run(m.pod(1, 2), {"/usr/bin/python3", meshAppsScript(), "send",
                                   "--host=" + m.pod(2, 1).ipv4, "--port=8080", "--text=no"});
    CHECK_FALSE(out.ok());
  }
  auto allowed = m.run(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "send",
                                     "--host=" + m.pod(2, 1).ipv4, "--port=8080", "--text=yes"});
  REQUIRE_OK(allowed);
  std::map<std::string, std::string> denied = {
      {"policy", "default/deny-n1p2"}, {"action", "DENY"}, {"decision", "deny"}};
  std::string text = scrapeUntil(m.metricsPort(2), "ferry_policy_decisions_total", denied, kDenied);
  CHECK(sampleValue(text, "ferry_policy_decisions_total", denied) == kDenied);
  CHECK(sampleValue(text, "ferry_errors_total", {{"reason", "policy_denied"}}) == kDenied);
  CHECK(sampleValue(text, "istio_tcp_connections_opened_total",
                    {{"reporter", "destination"}, {"source_workload", "n1p2"}}) == std::nullopt);
  CHECK(sampleValue(text, "istio_tcp_connections_opened_total",
                    {{"reporter", "destination"}, {"source_workload", "n1p1"}}) == 1);
  int logged = 0;
  for (const auto& j : accessLogLines(m.agentLog(2))) {
    if (j["policy_decision"] == "deny") {
      ++logged;
      CHECK(j["policy_name"] == "default/deny-n1p2");
      CHECK(j["policy_rule"] == "0");
      CHECK(j["response_flags"] == "DENY");
    }
  }
  CHECK(logged == kDenied);
}

constexpr uint16_t kHttpPort = 9080;
constexpr char kClientTraceparent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr char kClientTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kClientSpan[] = "00f067aa0ba902b7";
constexpr char kDeniedBody[] = "RBAC: access denied";

struct HttpRow {
  int status = 0;
  std::string body;
};

// POSTs `body_bytes` to each path in turn on one keep-alive connection from `from` to n2p1's
// HTTP port, with the client's traceparent.
std::vector<HttpRow> postAll(Mesh& m, const harness::Pod& from,
                             const std::vector<std::string>& paths, int body_bytes) {
  auto out =
      m.run(from, {"/usr/bin/python3", meshAppsScript(), "http-post", "--host=" + m.pod(2, 1).ipv4,
                   absl::StrCat("--port=", kHttpPort), absl::StrCat("--bytes=", body_bytes),
                   "--text=" + absl::StrJoin(paths, " "),
                   std::string("--traceparent=") + kClientTraceparent});
  REQUIRE_OK(out);
  std::vector<HttpRow> rows;
  for (absl::string_view line : absl::StrSplit(*out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits(' ', 2));
    REQUIRE(f.size() == 3);
    rows.push_back({std::stoi(f[0]), f[2]});
  }
  return rows;
}

// The "api" Service, DENY /admin* at n2p1 (which also refuses every connection to n2p1's
// non-HTTP ports, Istio's L4 reading of an HTTP-only rule) and the HTTP app behind it.
void addHttpApp(Mesh& m) {
  REQUIRE_OK(m.applyManifest("service-api.yaml", kApiService));
  REQUIRE_OK(m.applyManifest("deny-admin.yaml", kDenyAdmin));
  REQUIRE_OK(
      m.startApp(m.pod(2, 1), {"http-server", absl::StrCat("--port=", kHttpPort)}, kHttpPort));
}

std::map<std::string, std::string> apiLabels(const std::string& code, const std::string& flags) {
  auto labels = meshLabels("destination", "api", "http");
  labels["response_code"] = code;
  labels["response_flags"] = flags;
  return labels;
}

TEST_CASE("after known HTTP traffic the destination reports exact requests, sizes and traces",
          "[privileged][e2e][telemetry]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  addHttpApp(m);
  constexpr int kAllowed = 10;
  constexpr int kDenied = 3;
  constexpr int kBodyBytes = 100;
  // Denials in the middle of one keep-alive connection.
  std::vector<std::string> paths;
  for (int i = 0; i < kAllowed + kDenied; ++i) {
    paths.push_back(i >= 5 && i < 5 + kDenied ? absl::StrCat("/admin/", i)
                                              : absl::StrCat("/orders/", i));
  }
  std::vector<HttpRow> rows = postAll(m, m.pod(1, 1), paths, kBodyBytes);
  REQUIRE(rows.size() == paths.size());
  double allowed_response_bytes = 0;
  std::set<std::string> app_spans;  // the span ids the app received as its parent
  for (size_t i = 0; i < rows.size(); ++i) {
    INFO("request " << paths[i] << ": " << rows[i].status << " " << rows[i].body);
    if (absl::StartsWith(paths[i], "/admin")) {
      CHECK(rows[i].status == 403);
      CHECK(rows[i].body == kDeniedBody);
      continue;
    }
    REQUIRE(rows[i].status == 200);
    allowed_response_bytes += static_cast<double>(rows[i].body.size());
    // "path=/orders/0 traceparent=00-<trace>-<span>-01 bytes=100"
    std::vector<std::string> f = absl::StrSplit(rows[i].body, ' ');
    REQUIRE(f.size() == 3);
    CHECK(f[2] == absl::StrCat("bytes=", kBodyBytes));
    REQUIRE(f[1].starts_with("traceparent="));
    auto forwarded = trace::parseTraceparent(std::string_view(f[1]).substr(12));
    REQUIRE_OK(forwarded);
    CHECK(forwarded->traceIdHex() == kClientTraceId);  // the caller's trace goes on
    CHECK(forwarded->spanIdHex() != kClientSpan);      // in a span of Ferry's
    app_spans.insert(forwarded->spanIdHex());
  }
  CHECK(app_spans.size() == kAllowed);

  const uint16_t port = m.metricsPort(2);
  scrapeUntil(port, "istio_requests_total", apiLabels("200", "-"), kAllowed);
  std::string text = scrapeUntil(port, "istio_requests_total", apiLabels("403", "DENY"), kDenied);
  CHECK(sampleValue(text, "istio_requests_total", apiLabels("200", "-")) == kAllowed);
  CHECK(sampleValue(text, "istio_requests_total", apiLabels("403", "DENY")) == kDenied);
  CHECK(countSamples(text, "istio_requests_total") == 2);
  // Body bytes: what the app was sent (nothing of a denied request) and what the client got.
  CHECK(sampleValue(text, "istio_request_bytes_count", apiLabels("200", "-")) == kAllowed);
  CHECK(sampleValue(text, "istio_request_bytes_sum", apiLabels("200", "-")) ==
        kAllowed * kBodyBytes);
  CHECK(sampleValue(text, "istio_request_bytes_sum", apiLabels("403", "DENY")) == 0);
  CHECK(sampleValue(text, "istio_response_bytes_sum", apiLabels("200", "-")) ==
        allowed_response_bytes);
  CHECK(sampleValue(text, "istio_response_bytes_sum", apiLabels("403", "DENY")) ==
        kDenied * std::string_view(kDeniedBody).size());
  CHECK(sampleValue(text, "istio_request_duration_milliseconds_count", apiLabels("200", "-")) ==
        kAllowed);
  CHECK(sampleValue(text, "istio_request_duration_milliseconds_count", apiLabels("403", "DENY")) ==
        kDenied);
  CHECK(sampleValue(text, "ferry_policy_decisions_total",
                    {{"policy", "default/deny-admin"}, {"action", "DENY"}, {"decision", "deny"}}) ==
        kDenied);

  // One access-log line per request, in the client's trace, naming the span the app saw.
  int allowed_lines = 0, denied_lines = 0;
  std::set<std::string> logged_spans;
  for (const auto& j : accessLogLines(m.agentLog(2))) {
    if (j["kind"] != "request") {
      continue;
    }
    INFO(j.dump());
    CHECK(j["reporter"] == "destination");
    CHECK(j["method"] == "POST");
    CHECK(j["trace_id"] == kClientTraceId);
    CHECK(j["parent_span_id"] == kClientSpan);
    CHECK(j["source"]["principal"] == "spiffe://cluster.local/ns/default/sa/sa-n1p1");
    if (j["response_code"] == 200) {
      ++allowed_lines;
      CHECK(j["bytes_received"] == kBodyBytes);
      logged_spans.insert(j["span_id"].get<std::string>());
    } else {
      ++denied_lines;
      CHECK(j["response_code"] == 403);
      CHECK(j["policy_name"] == "default/deny-admin");
      CHECK(j["policy_rule"] == "0");
      CHECK(j["response_flags"] == "DENY");
      CHECK(j["bytes_received"] == 0);
      CHECK(j["span_id"] != kClientSpan);
    }
  }
  CHECK(allowed_lines == kAllowed);
  CHECK(denied_lines == kDenied);
  CHECK(logged_spans == app_spans);
}

TEST_CASE("a real Prometheus scrapes an agent and PromQL returns connection and request counts",
          "[privileged][e2e][telemetry][prometheus]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE_OK(m.startApp(m.pod(2, 1), {"echo-server", "--port=8080"}, 8080));
  for (int i = 0; i < kConnections; ++i) {
    auto out = m.run(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "send",
                                   absl::StrCat("--host=", kWebVip), "--port=80", "--text=hi"});
    REQUIRE_OK(out);
  }
  addHttpApp(m);
  constexpr int kRequests = 4;
  std::vector<HttpRow> rows =
      postAll(m, m.pod(1, 1), {"/a", "/b", "/admin", "/c", "/d", "/admin/x"}, 10);
  REQUIRE(rows.size() == 6);
  scrapeUntil(m.metricsPort(2), "istio_tcp_connections_closed_total", webLabels("destination"),
              kConnections);
  scrapeUntil(m.metricsPort(2), "istio_requests_total", apiLabels("403", "DENY"), 2);
  auto prometheus = Prometheus::start(m.cluster().scratchDir(), m.metricsPort(2));
  REQUIRE_OK(prometheus);
  std::string connections =
      (*prometheus)
          ->queryScalar(
              "sum(istio_tcp_connections_opened_total{reporter=\"destination\","
              "destination_service=\"web.default.svc.cluster.local\"})");
  std::string ok = (*prometheus)
                       ->queryScalar(
                           "sum(istio_requests_total{reporter=\"destination\","
                           "destination_service=\"api.default.svc.cluster.local\","
                           "response_code=\"200\"})");
  std::string denied = (*prometheus)
                           ->queryScalar(
                               "sum by (response_flags) (istio_requests_total{"
                               "response_code=\"403\"})");
  INFO("prometheus log: " << (*prometheus)->log());
  CHECK(connections == absl::StrCat(kConnections));
  CHECK(ok == absl::StrCat(kRequests));
  CHECK(denied == "2");
}

}  // namespace
}  // namespace ferry::e2e

namespace ferry::e2e {
namespace {

nlohmann::json ferryctlJson(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {FERRYCTL_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"-o", "json"});
  auto r = harness::runProcess({}, argv, absl::Seconds(30));
  REQUIRE_OK(r);
  INFO("ferryctl stderr: " << r->err);
  REQUIRE(r->exit_code == 0);
  return nlohmann::json::parse(r->out);
}

TEST_CASE("ferryctl reads a running agent: status, certs, and check allowed and denied",
          "[privileged][e2e][telemetry][cli]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE_OK(m.applyManifest("deny-n1p2.yaml", kDenyN1p2));
  const std::string admin = absl::StrCat("127.0.0.1:", m.adminPort(2));
  nlohmann::json status = ferryctlJson({"status", "--admin", admin});
  CHECK(status["node"] == "node2");
  CHECK(status["ready"] == true);
  CHECK(status["pods"] == 2);
  CHECK(status["policies"] == 1);

  nlohmann::json certs = ferryctlJson({"certs", "--admin", admin});
  std::set<std::string> identities;
  for (const auto& c : certs) {
    identities.insert(c["spiffe_id"].get<std::string>());
    CHECK(c["expires_in_seconds"].get<int64_t>() > 0);
  }
  CHECK(identities == std::set<std::string>{"spiffe://cluster.local/ns/default/sa/sa-n2p1",
                                            "spiffe://cluster.local/ns/default/sa/sa-n2p2"});

  nlohmann::json denied =
      ferryctlJson({"check", "default/n1p2", "default/n2p1", "--port", "8080", "--admin", admin});
  CHECK(denied["allowed"] == false);
  CHECK(denied["policy"] == "default/deny-n1p2");
  CHECK(denied["rule"] == 0);
  nlohmann::json allowed =
      ferryctlJson({"check", "default/n1p1", "default/n2p1", "--port", "8080", "--admin", admin});
  CHECK(allowed["allowed"] == true);
  CHECK(allowed["policy"].is_null());
  CHECK(allowed["reason"] == "no_allow_policy");
}

}  // namespace
}  // namespace ferry::e2e
