// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>

#include "metrics/exporter.h"
#include "scrape.h"
#include "status_testing.h"

namespace ferry::metrics {
namespace {

using testing::countSamples;
using testing::httpGet;
using testing::sampleValue;

ConnectionLabels webFromClient() {
  ConnectionLabels l;
  l.reporter = Reporter::kDestination;
  l.source = {"client", "demo", "spiffe://cluster.local/ns/demo/sa/client", "client", "v1"};
  l.destination = {"web", "demo", "spiffe://cluster.local/ns/demo/sa/web", "web", "v2"};
  l.destination_service = "web.demo.svc.cluster.local";
  l.destination_service_name = "web";
  l.destination_service_namespace = "demo";
  l.request_protocol = "http";
  return l;
}

std::string scrape(const Exporter& e) {
  return httpGet(absl::StrCat("http://127.0.0.1:", e.port(), "/metrics"));
}

TEST_CASE("after known traffic the scrape shows exact values and Istio labels", "[metrics]") {
  auto exporter = Exporter::start("127.0.0.1:0");
  REQUIRE_OK(exporter);
  Exporter& e = **exporter;
  REQUIRE(e.port() > 0);
  ConnectionLabels labels = webFromClient();
  for (int i = 0; i < 10; ++i) {
    e.istio().recordRequest(
        labels,
        {.response_code = 200, .duration_ms = 3, .request_bytes = 100, .response_bytes = 1024});
  }
  for (int i = 0; i < 3; ++i) {
    e.istio().recordRequest(
        labels,
        {.response_code = 403, .duration_ms = 1, .request_bytes = 80, .response_bytes = 19});
  }
  labels.request_protocol = "tcp";
  TcpConnectionMetrics conn = e.istio().openConnection(labels);
  conn.addSent(1000);
  conn.addSent(234);
  conn.addReceived(4096);
  conn.close();

  std::string text = scrape(e);
  REQUIRE(!text.empty());
  const std::map<std::string, std::string> who = {
      {"reporter", "destination"},
      {"source_workload", "client"},
      {"source_principal", "spiffe://cluster.local/ns/demo/sa/client"},
      {"destination_workload", "web"},
      {"destination_service", "web.demo.svc.cluster.local"},
      {"connection_security_policy", "mutual_tls"}};
  auto with = [&](std::map<std::string, std::string> extra) {
    extra.insert(who.begin(), who.end());
    return extra;
  };
  CHECK(sampleValue(text, "istio_requests_total", with({{"response_code", "200"}})) == 10);
  CHECK(sampleValue(text, "istio_requests_total", with({{"response_code", "403"}})) == 3);
  CHECK(sampleValue(text, "istio_request_bytes_sum", with({{"response_code", "200"}})) == 1000);
  CHECK(sampleValue(text, "istio_response_bytes_sum", with({{"response_code", "403"}})) == 57);
  CHECK(sampleValue(text, "istio_request_duration_milliseconds_count",
                    with({{"response_code", "200"}})) == 10);
  CHECK(sampleValue(text, "istio_request_duration_milliseconds_bucket",
                    with({{"response_code", "200"}, {"le", "5"}})) == 10);
  CHECK(sampleValue(text, "istio_tcp_connections_opened_total", with({})) == 1);
  CHECK(sampleValue(text, "istio_tcp_connections_closed_total", with({})) == 1);
  CHECK(sampleValue(text, "istio_tcp_sent_bytes_total", with({})) == 1234);
  CHECK(sampleValue(text, "istio_tcp_received_bytes_total", with({})) == 4096);
  // Missing peer details are exported as "unknown", as Istio does.
  ConnectionLabels anonymous;
  anonymous.mutual_tls = false;
  e.istio().recordRequest(anonymous, {.response_code = 200});
  CHECK(sampleValue(scrape(e), "istio_requests_total",
                    {{"source_workload", "unknown"}, {"connection_security_policy", "none"}}) == 1);
}

TEST_CASE("label cardinality is bounded and what overflows is counted", "[metrics]") {
  auto exporter = Exporter::start("127.0.0.1:0", {.max_label_sets = 5});
  REQUIRE_OK(exporter);
  Exporter& e = **exporter;
  for (int i = 0; i < 20; ++i) {
    ConnectionLabels l = webFromClient();
    const std::string workload = absl::StrCat("churning-pod-", i);
    l.source.workload = workload;
    e.istio().recordRequest(l, {.response_code = 200});
  }
  std::string text = scrape(e);
  CHECK(countSamples(text, "istio_requests_total") == 6);  // 5 admitted + the overflow set
  CHECK(sampleValue(text, "istio_requests_total", {{"source_workload", "overflow"}}) == 15);
  CHECK(sampleValue(text, "ferry_metrics_label_sets_dropped_total",
                    {{"family", "istio_requests_total"}}) == 15);
  CHECK(e.istio().droppedLabelSets("istio_requests_total") == 15);
  CHECK(e.istio().droppedLabelSets("istio_tcp_sent_bytes_total") == 0);
  // A label set admitted before the family filled keeps its own series.
  ConnectionLabels first = webFromClient();
  first.source.workload = "churning-pod-0";
  e.istio().recordRequest(first, {.response_code = 200});
  CHECK(sampleValue(scrape(e), "istio_requests_total", {{"source_workload", "churning-pod-0"}}) ==
        2);
}

TEST_CASE("a label set seen again counts in the same series, an overflowed one drops again",
          "[metrics]") {
  auto exporter = Exporter::start("127.0.0.1:0", {.max_label_sets = 1});
  REQUIRE_OK(exporter);
  Exporter& e = **exporter;
  // Empty and "unknown" are the same exported label: one series.
  ConnectionLabels empty = webFromClient();
  empty.source.app = "";
  ConnectionLabels unknown = webFromClient();
  unknown.source.app = "unknown";
  e.istio().recordRequest(empty, {.response_code = 200, .request_bytes = 10});
  e.istio().recordRequest(unknown, {.response_code = 200, .request_bytes = 10});
  e.istio().recordRequest(empty, {.response_code = 200, .request_bytes = 10});
  // The family is full: each request of another set folds into overflow and counts a drop.
  for (int i = 0; i < 3; ++i) {
    e.istio().recordRequest(empty, {.response_code = 503, .request_bytes = 1});
  }
  std::string text = scrape(e);
  CHECK(sampleValue(text, "istio_requests_total",
                    {{"source_app", "unknown"}, {"response_code", "200"}}) == 3);
  CHECK(sampleValue(text, "istio_request_bytes_sum", {{"response_code", "200"}}) == 30);
  CHECK(sampleValue(text, "istio_requests_total", {{"response_code", "overflow"}}) == 3);
  CHECK(sampleValue(text, "istio_request_bytes_sum", {{"response_code", "overflow"}}) == 3);
  for (const char* family : {"istio_requests_total", "istio_request_duration_milliseconds",
                             "istio_request_bytes", "istio_response_bytes"}) {
    INFO(family);
    CHECK(e.istio().droppedLabelSets(family) == 3);
  }
}

TEST_CASE("ferry_ internals are read from sources at scrape time", "[metrics]") {
  auto exporter = Exporter::start("127.0.0.1:0");
  REQUIRE_OK(exporter);
  Exporter& e = **exporter;
  double captured = 41;
  e.addSource([&captured] {
    return std::vector<Sample>{
        {"ferry_bpf_connect_captured_total", "connects captured", true, {}, captured},
        {"ferry_certificate_expiry_seconds",
         "seconds left",
         false,
         {{"identity", "spiffe://cluster.local/ns/demo/sa/web"}},
         43200},
        {"not_ours_total", "refused: no ferry_ prefix", true, {}, 1}};
  });
  captured = 42;  // read at scrape time, not at registration
  std::string text = scrape(e);
  CHECK(sampleValue(text, "ferry_bpf_connect_captured_total", {}) == 42);
  CHECK(sampleValue(text, "ferry_certificate_expiry_seconds",
                    {{"identity", "spiffe://cluster.local/ns/demo/sa/web"}}) == 43200);
  CHECK(sampleValue(text, "ferry_metrics_bad_samples_total", {}) == 1);
  CHECK(!sampleValue(text, "not_ours_total", {}).has_value());
}

TEST_CASE("an address that cannot be served is a clear error", "[metrics]") {
  auto first = Exporter::start("127.0.0.1:0");
  REQUIRE_OK(first);
  auto clash = Exporter::start(absl::StrCat("127.0.0.1:", (*first)->port()));
  CHECK(clash.status().code() == absl::StatusCode::kUnavailable);
  CHECK(absl::StrContains(clash.status().message(), "cannot serve metrics on 127.0.0.1:"));
}

}  // namespace
}  // namespace ferry::metrics
