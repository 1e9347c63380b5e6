// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The Grafana dashboard parses and queries only metrics the exporter defines: a renamed metric
// would otherwise leave an empty panel that nobody notices.

#include <catch2/catch.hpp>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "nlohmann/json.hpp"

namespace {

using nlohmann::json;

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Metric names as the exporter's sources spell them: .Name("...") for prometheus-cpp families,
// `.name = "ferry_..."` for families it builds itself; and the agent's scrape-time sources,
// where every ferry_ family name is a string literal (counter("ferry_..."), a stat mapping).
std::set<std::string> exporterMetricNames() {
  std::set<std::string> names;
  auto collect = [&](const char* file, const std::regex& re) {
    const std::string text = readFile(std::string(FERRY_SOURCE_DIR) + file);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
         ++it) {
      names.insert((*it)[1]);
    }
  };
  const std::regex exporter(R"re((?:\.Name\(|\.name = )"([a-zA-Z_:][a-zA-Z0-9_:]*)")re");
  for (const char* file :
       {"/userspace/metrics/istio_metrics.cc", "/userspace/metrics/exporter.cc"}) {
    collect(file, exporter);
  }
  // A literal ending in '_' is a prefix ("ferry_bpf_" + map name), not a family.
  const std::regex agent(R"re("(ferry_[a-z0-9_]*[a-z0-9])")re");
  for (const char* file : {"/agent/agent_metrics.cc", "/agent/telemetry/telemetry.cc"}) {
    collect(file, agent);
  }
  return names;
}

// Every metric name an expression reads. Label matchers ({...}), ranges ([...]), strings and
// grouping clauses are removed first; an identifier followed by '(' is a function.
std::set<std::string> metricsIn(std::string expr) {
  expr = std::regex_replace(expr, std::regex(R"("(\\.|[^"\\])*")"), " ");
  expr = std::regex_replace(expr, std::regex(R"(\{[^}]*\})"), " ");
  expr = std::regex_replace(expr, std::regex(R"(\[[^\]]*\])"), " ");
  expr = std::regex_replace(
      expr, std::regex(R"(\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\))"), " ");
  static const std::set<std::string> kKeywords = {"and", "or", "unless", "offset", "bool"};
  std::set<std::string> out;
  const std::regex ident(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?)");
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), ident);
       it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[1];
    const bool is_call = (*it)[2].matched;
    // Numbers like 0.99 and 1e3 start with a digit and never match; "e3" after one would.
    const auto pos = static_cast<size_t>(it->position(1));
    if (is_call || kKeywords.contains(name) || (pos > 0 && std::isdigit(expr[pos - 1]))) {
      continue;
    }
    out.insert(name);
  }
  return out;
}

// A histogram family exposes _bucket, _sum and _count series; counters are used by name.
bool defined(const std::set<std::string>& names, const std::string& metric) {
  if (names.contains(metric)) {
    return true;
  }
  for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
    if (metric.ends_with(suffix)) {
      const std::string base = metric.substr(0, metric.size() - suffix.size());
      if (names.contains(base) && !base.ends_with("_total")) {
        return true;
      }
    }
  }
  return false;
}

json dashboard() {
  return json::parse(
      readFile(std::string(FERRY_SOURCE_DIR) + "/charts/dashboards/ferry-workloads.json"));
}

TEST_CASE("dashboards: the expression reader finds metric names and skips the rest",
          "[dashboards]") {
  CHECK(metricsIn(R"(histogram_quantile(0.99, sum by (le, destination_workload) )"
                  R"((rate(istio_request_duration_milliseconds_bucket{reporter="destination",)"
                  R"(response_code!~"5.."}[$__rate_interval]))))") ==
        std::set<std::string>{"istio_request_duration_milliseconds_bucket"});
  CHECK(metricsIn("sum(rate(a_total[5m])) / sum(rate(b_total[5m])) or vector(0)") ==
        std::set<std::string>{"a_total", "b_total"});
  const auto names = exporterMetricNames();
  CHECK(defined(names, "istio_requests_total"));
  CHECK(defined(names, "istio_request_bytes_count"));
  CHECK_FALSE(defined(names, "istio_requests_total_bucket"));
  CHECK_FALSE(defined(names, "istio_bogus_total"));
}

TEST_CASE("dashboards: the exporter's metric names are found in its sources", "[dashboards]") {
  const auto names = exporterMetricNames();
  for (const char* expected :
       {"istio_requests_total", "istio_request_duration_milliseconds", "istio_tcp_sent_bytes_total",
        "istio_tcp_received_bytes_total", "istio_tcp_connections_opened_total",
        "istio_tcp_connections_closed_total", "ferry_metrics_label_sets_dropped_total",
        "ferry_metrics_bad_samples_total", "ferry_policy_decisions_total",
        "ferry_tls_handshakes_total", "ferry_certificate_expiration_timestamp_seconds"}) {
    INFO(expected);
    CHECK(names.contains(expected));
  }
}

TEST_CASE("dashboards: ferry-workloads queries only metrics the exporter defines", "[dashboards]") {
  const json d = dashboard();
  const auto names = exporterMetricNames();
  REQUIRE(d["panels"].is_array());
  std::set<std::string> used, exprs_seen;
  std::set<int> ids;
  for (const auto& panel : d["panels"]) {
    INFO("panel " << panel["title"]);
    CHECK(ids.insert(panel["id"].get<int>()).second);
    REQUIRE(panel["targets"].is_array());
    REQUIRE_FALSE(panel["targets"].empty());
    for (const auto& target : panel["targets"]) {
      const std::string expr = target["expr"];
      INFO(expr);
      const auto metrics = metricsIn(expr);
      CHECK_FALSE(metrics.empty());
      for (const auto& m : metrics) {
        INFO(m);
        CHECK(defined(names, m));
        used.insert(m);
      }
      exprs_seen.insert(expr);
    }
  }
  for (const auto& var : d["templating"]["list"]) {
    if (var["type"] == "query") {
      const std::string q = var["query"];
      std::smatch m;
      REQUIRE(std::regex_search(q, m, std::regex(R"(^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*))")));
      CHECK(defined(names, m[1]));
    }
  }
  // What the dashboard is for: rates, success, latency quantiles, TCP bytes, Ferry internals.
  for (const char* needed :
       {"istio_requests_total", "istio_request_duration_milliseconds_bucket",
        "istio_tcp_sent_bytes_total", "istio_tcp_received_bytes_total",
        "ferry_metrics_label_sets_dropped_total", "ferry_policy_decisions_total",
        "ferry_tls_handshakes_total", "ferry_certificate_expiration_timestamp_seconds"}) {
    INFO(needed);
    CHECK(used.contains(needed));
  }
  // Request rate split by response code.
  CHECK(std::any_of(exprs_seen.begin(), exprs_seen.end(), [](const std::string& e) {
    return std::regex_search(
        e, std::regex(R"(by \([^)]*\bresponse_code\b[^)]*\) \(rate\(istio_requests_total)"));
  }));
  for (const char* q :
       {"histogram_quantile(0.5,", "histogram_quantile(0.9,", "histogram_quantile(0.99,"}) {
    INFO(q);
    CHECK(std::any_of(exprs_seen.begin(), exprs_seen.end(),
                      [&](const std::string& e) { return e.find(q) != std::string::npos; }));
  }
}

}  // namespace
