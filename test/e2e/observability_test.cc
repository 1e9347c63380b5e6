// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Known traffic through the mesh, then the agents' telemetry: exact Istio metric values and
// labels on both reporters, the access log, policy decisions, and a real Prometheus server
// scraping an agent and answering PromQL.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "e2e/mesh.h"
#include "e2e/observe.h"
#include "metrics/scrape.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

using metrics::testing::sampleValue;

constexpr int kConnections = 5;
// Refuses n1p2's identity at n2p1.
constexpr char kDenyN1p2[] = R"(apiVersion: security.ferry.dev/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: deny-n1p2
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
)";
const std::string kText = "thirty-seven bytes of mesh telemetry!";  // echoed back

std::map<std::string, std::string> webLabels(const std::string& reporter) {
  return {{"reporter", reporter},
          {"source_workload", "n1p1"},
          {"source_workload_namespace", "default"},
          {"source_principal", "spiffe://cluster.local/ns/default/sa/sa-n1p1"},
          {"source_app", "n1p1"},
          {"destination_workload", "n2p1"},
          {"destination_workload_namespace", "default"},
          {"destination_principal", "spiffe://cluster.local/ns/default/sa/sa-n2p1"},
          {"destination_app", "n2p1"},
          {"destination_service", "web.default.svc.cluster.local"},
          {"destination_service_name", "web"},
          {"destination_service_namespace", "default"},
          {"request_protocol", "tcp"},
          {"connection_security_policy", "mutual_tls"}};
}

TEST_CASE("after known TCP traffic both agents' metrics show exact counts, bytes and labels",
          "[privileged][e2e][telemetry]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE(kText.size() == 37);
  REQUIRE_OK(m.startApp(m.pod(2, 1), {"echo-server", "--port=8080"}, 8080));
  for (int i = 0; i < kConnections; ++i) {
    auto out =
        m.run(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "send",
                            absl::StrCat("--host=", kWebVip), "--port=80", "--text=" + kText});
    REQUIRE_OK(out);
    REQUIRE_THAT(*out, Catch::Contains("OK"));
  }
  const double bytes = kConnections * static_cast<double>(kText.size());
  for (auto [node, reporter] : {std::pair{1, "source"}, std::pair{2, "destination"}}) {
    INFO("node" << node << " reporter " << reporter);
    auto labels = webLabels(reporter);
    // The close is counted when the agent's relay finishes, just after the client returns.
    std::string text = scrapeUntil(m.metricsPort(node), "istio_tcp_connections_closed_total",
                                   labels, kConnections);
    CHECK(sampleValue(text, "istio_tcp_connections_opened_total", labels) == kConnections);
    CHECK(sampleValue(text, "istio_tcp_connections_closed_total", labels) == kConnections);
    CHECK(sampleValue(text, "istio_tcp_received_bytes_total", labels) == bytes);
    CHECK(sampleValue(text, "istio_tcp_sent_bytes_total", labels) == bytes);
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
      CHECK(j["bytes_received"] == kText.size());
      CHECK(j["bytes_sent"] == kText.size());
      CHECK(j["source"]["principal"] == "spiffe://cluster.local/ns/default/sa/sa-n1p1");
    }
  }
  CHECK(connections == kConnections);
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

TEST_CASE("a real Prometheus scrapes an agent and PromQL returns the connection count",
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
  scrapeUntil(m.metricsPort(2), "istio_tcp_connections_closed_total", webLabels("destination"),
              kConnections);
  auto prometheus = Prometheus::start(m.cluster().scratchDir(), m.metricsPort(2));
  REQUIRE_OK(prometheus);
  std::string value = (*prometheus)
                          ->queryScalar(
                              "sum(istio_tcp_connections_opened_total{reporter=\"destination\","
                              "destination_service=\"web.default.svc.cluster.local\"})");
  INFO("prometheus log: " << (*prometheus)->log());
  CHECK(value == absl::StrCat(kConnections));
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
