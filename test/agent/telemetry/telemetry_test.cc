// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/telemetry/telemetry.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "metrics/scrape.h"
#include "status_testing.h"

namespace ferry::agent {
namespace {

using metrics::testing::httpGet;
using metrics::testing::sampleValue;

std::string scrape(const Telemetry& t) {
  return httpGet(absl::StrCat("http://127.0.0.1:", t.metricsPort(), "/metrics"));
}

ConnectionInfo inboundInfo() {
  ConnectionInfo info;
  info.reporter = TelemetryReporter::kDestination;
  info.source = {.workload = "client",
                 .ns = "default",
                 .principal = "spiffe://cluster.local/ns/default/sa/client",
                 .address = "10.244.1.11:40000"};
  info.destination = {.workload = "web", .ns = "default", .address = "10.244.2.11:8080"};
  info.destination_service = "web.default.svc.cluster.local";
  info.mtls = true;
  info.policy = {.allowed = true,
                 .action = PolicyOutcome::Action::kAllow,
                 .policy = "default/allow-client",
                 .rule = 0};
  return info;
}

TEST_CASE("connections count opened, closed and bytes with Istio labels", "[telemetry]") {
  auto sink = std::make_shared<accesslog::MemorySink>();
  auto t = Telemetry::create({.metrics_address = "127.0.0.1:0"}, sink);
  REQUIRE_OK(t);
  for (int i = 0; i < 3; ++i) {
    ConnectionTelemetry c = (*t)->openConnection(inboundInfo());
    CHECK(c.open());
    c.close({.bytes_from_source = 100, .bytes_to_source = 1000});
    CHECK_FALSE(c.open());
    c.close({.bytes_from_source = 5});  // a second close changes nothing
  }
  std::string text = scrape(**t);
  std::map<std::string, std::string> labels = {
      {"reporter", "destination"},
      {"source_workload", "client"},
      {"source_principal", "spiffe://cluster.local/ns/default/sa/client"},
      {"destination_workload", "web"},
      {"destination_service", "web.default.svc.cluster.local"},
      {"destination_service_name", "web"},
      {"destination_service_namespace", "default"},
      {"connection_security_policy", "mutual_tls"}};
  CHECK(sampleValue(text, "istio_tcp_connections_opened_total", labels) == 3);
  CHECK(sampleValue(text, "istio_tcp_connections_closed_total", labels) == 3);
  CHECK(sampleValue(text, "istio_tcp_received_bytes_total", labels) == 300);
  CHECK(sampleValue(text, "istio_tcp_sent_bytes_total", labels) == 3000);
  CHECK(sampleValue(
            text, "ferry_policy_decisions_total",
            {{"policy", "default/allow-client"}, {"action", "ALLOW"}, {"decision", "allow"}}) == 3);
  auto lines = sink->lines();
  REQUIRE(lines.size() == 3);
  auto j = nlohmann::json::parse(lines[0]);
  CHECK(j["kind"] == "connection");
  CHECK(j["bytes_received"] == 100);
  CHECK(j["bytes_sent"] == 1000);
  CHECK(j["policy_name"] == "default/allow-client");
  CHECK(j["policy_rule"] == "0");
  CHECK(j["source"]["principal"] == "spiffe://cluster.local/ns/default/sa/client");
}

TEST_CASE("open connections with the same peers share one record and keep their own addresses",
          "[telemetry]") {
  auto sink = std::make_shared<accesslog::MemorySink>();
  auto t = Telemetry::create({.metrics_address = "127.0.0.1:0"}, sink);
  REQUIRE_OK(t);
  std::vector<ConnectionTelemetry> open;
  for (int port = 40000; port < 40100; ++port) {
    ConnectionInfo info = inboundInfo();
    info.source.address = absl::StrCat("10.244.1.11:", port);
    open.push_back((*t)->openConnection(info));
  }
  CHECK((*t)->sharedConnectionInfos().in_use == 1);

  // Any other field makes another record: a principal, a decision, a peer's label.
  ConnectionInfo other_principal = inboundInfo();
  other_principal.source.principal = "spiffe://cluster.local/ns/default/sa/other";
  ConnectionInfo other_rule = inboundInfo();
  other_rule.policy.rule = 1;
  ConnectionInfo other_version = inboundInfo();
  other_version.destination.version = "v2";
  ConnectionInfo source_side = inboundInfo();
  source_side.reporter = TelemetryReporter::kSource;
  for (const ConnectionInfo& info : {other_principal, other_rule, other_version, source_side}) {
    open.push_back((*t)->openConnection(info));
  }
  CHECK((*t)->sharedConnectionInfos().in_use == 5);

  for (ConnectionTelemetry& c : open) {
    c.close({.bytes_from_source = 1});
  }
  auto lines = sink->lines();
  REQUIRE(lines.size() == 104);
  for (int i = 0; i < 100; ++i) {
    auto j = nlohmann::json::parse(lines[i]);
    CHECK(j["source"]["address"] == absl::StrCat("10.244.1.11:", 40000 + i));
    CHECK(j["destination"]["address"] == "10.244.2.11:8080");
    CHECK(j["source"]["principal"] == "spiffe://cluster.local/ns/default/sa/client");
  }
  CHECK(nlohmann::json::parse(lines[100])["source"]["principal"] ==
        "spiffe://cluster.local/ns/default/sa/other");
  CHECK(nlohmann::json::parse(lines[101])["policy_rule"] == "1");
  CHECK(nlohmann::json::parse(lines[103])["reporter"] == "source");

  // Closed connections hold no record; the table drops what only it holds as it grows, so
  // 1,000 peers that came and went leave it at its smallest size (64) or below.
  open.clear();
  CHECK((*t)->sharedConnectionInfos().in_use == 0);
  for (int i = 0; i < 1000; ++i) {
    ConnectionInfo info = inboundInfo();
    info.source.workload = absl::StrCat("client-", i);
    (*t)->openConnection(info).close({});
  }
  CHECK((*t)->sharedConnectionInfos().in_use == 0);
  CHECK((*t)->sharedConnectionInfos().kept <= 64);
}

TEST_CASE("a denied connection is a decision and a log line, not an opened connection",
          "[telemetry]") {
  auto sink = std::make_shared<accesslog::MemorySink>();
  auto t = Telemetry::create({.metrics_address = "127.0.0.1:0"}, sink);
  REQUIRE_OK(t);
  ConnectionInfo info = inboundInfo();
  info.policy = {.allowed = false,
                 .action = PolicyOutcome::Action::kDeny,
                 .policy = "default/deny-all",
                 .rule = 2};
  (*t)->connectionDenied(info);
  std::string text = scrape(**t);
  CHECK(sampleValue(text, "istio_tcp_connections_opened_total", {}) == std::nullopt);
  CHECK(sampleValue(text, "ferry_policy_decisions_total",
                    {{"policy", "default/deny-all"}, {"action", "DENY"}, {"decision", "deny"}}) ==
        1);
  REQUIRE(sink->lines().size() == 1);
  auto j = nlohmann::json::parse(sink->lines()[0]);
  CHECK(j["policy_decision"] == "deny");
  CHECK(j["response_flags"] == "DENY");
  CHECK(j["policy_rule"] == "2");
}

TEST_CASE("requests count by response code with trace ids in the access log", "[telemetry]") {
  auto sink = std::make_shared<accesslog::MemorySink>();
  auto t = Telemetry::create({.metrics_address = "127.0.0.1:0"}, sink);
  REQUIRE_OK(t);
  HttpRequestInfo r;
  r.connection = inboundInfo();
  r.method = "GET";
  r.path = "/hello";
  r.authority = "web";
  r.response_code = 200;
  r.response_bytes = 5;
  r.duration = absl::Milliseconds(3);
  r.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  r.span_id = "00f067aa0ba902b7";
  r.parent_span_id = "1111111111111111";
  for (int i = 0; i < 10; ++i) {
    (*t)->recordRequest(r);
  }
  r.response_code = 403;
  r.connection.policy = {.allowed = false,
                         .action = PolicyOutcome::Action::kDeny,
                         .policy = "default/deny-admin",
                         .rule = 0};
  (*t)->recordRequest(r);
  std::string text = scrape(**t);
  CHECK(sampleValue(text, "istio_requests_total",
                    {{"response_code", "200"},
                     {"request_protocol", "http"},
                     {"reporter", "destination"},
                     {"destination_workload", "web"}}) == 10);
  CHECK(sampleValue(text, "istio_requests_total",
                    {{"response_code", "403"}, {"response_flags", "DENY"}}) == 1);
  CHECK(sampleValue(text, "istio_request_duration_milliseconds_count",
                    {{"response_code", "200"}}) == 10);
  auto lines = sink->lines();
  REQUIRE(lines.size() == 11);
  auto j = nlohmann::json::parse(lines[0]);
  CHECK(j["kind"] == "request");
  CHECK(j["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(j["span_id"] == "00f067aa0ba902b7");
  CHECK(j["parent_span_id"] == "1111111111111111");
  CHECK(j["method"] == "GET");
  CHECK(j["path"] == "/hello");
  CHECK(j["response_code"] == 200);
  auto denied = nlohmann::json::parse(lines[10]);
  CHECK(denied["response_code"] == 403);
  CHECK(denied["policy_decision"] == "deny");
}

TEST_CASE("the access log off or sampled to zero writes nothing, metrics still count",
          "[telemetry]") {
  for (accesslog::Config config : {accesslog::Config{.enabled = false},
                                   accesslog::Config{.enabled = true, .sample_rate = 0.0}}) {
    auto sink = std::make_shared<accesslog::MemorySink>();
    auto t = Telemetry::create({.metrics_address = "127.0.0.1:0", .access_log = config}, sink);
    REQUIRE_OK(t);
    (*t)->openConnection(inboundInfo()).close({.bytes_from_source = 1});
    CHECK(sink->lines().empty());
    CHECK(sampleValue(scrape(**t), "istio_tcp_connections_closed_total", {}) == 1);
  }
}

TEST_CASE("without a metrics address there is no endpoint and calls still work", "[telemetry]") {
  auto sink = std::make_shared<accesslog::MemorySink>();
  auto t = Telemetry::create({.metrics_address = ""}, sink);
  REQUIRE_OK(t);
  CHECK((*t)->metricsPort() == 0);
  (*t)->openConnection(inboundInfo()).close({});
  CHECK(sink->lines().size() == 1);
}

TEST_CASE("a bad sample rate or an unusable address is refused", "[telemetry]") {
  CHECK_FALSE(Telemetry::create({.metrics_address = "", .access_log = {.sample_rate = 2.0}}).ok());
  CHECK_FALSE(Telemetry::create({.metrics_address = "not-an-address:x"}).ok());
}

}  // namespace
}  // namespace ferry::agent
