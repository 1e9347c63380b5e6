// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// `ferryctl stat` and the alerting rules against real agents fed by ferry-controller (issue 22
// point 4). Known traffic with known outcomes during ferryctl's window: its JSON counts and
// success rates are exact, its latency quantiles sit where the histogram buckets put them
// (a 300 ms backend: every request in (250, 500] ms, so p50/p95/p99 are 375/487.5/497.5 by
// histogram_quantile's interpolation). A real Prometheus scraping both agents answers the
// same through `ferryctl stat --prometheus`. Every metric name the rules in
// charts/ferry/alerts/ferry-rules.yaml use is one the agents or the controller export.
#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cli/stat_math.h"
#include "e2e/http_apps.h"
#include "e2e/mesh.h"
#include "e2e/observe.h"
#include "eventually.h"
#include "metrics/scrape.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

using ferry::testing::eventually;
using namespace std::chrono_literals;

constexpr char kShopVip[] = "10.96.0.40";
constexpr char kSlowVip[] = "10.96.0.41";

std::string httpService(const std::string& name, const std::string& vip, int target_port,
                        const std::string& app) {
  return absl::StrCat("apiVersion: v1\nkind: Service\nmetadata:\n  name: ", name,
                      "\n  namespace: default\nspec:\n  clusterIP: ", vip,
                      "\n  ports:\n  - name: http\n    port: 80\n    targetPort: ", target_port,
                      "\n  selector:\n    app: ", app, "\n");
}

// n2p2 admits n1p1: every request to it is a decision of this policy
// (ferry_policy_decisions_total, which the policy-denied alert reads).
constexpr char kAllowN1p1[] = R"(apiVersion: security.ferry.dev/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: allow-n1p1
  namespace: default
spec:
  selector:
    matchLabels:
      app: n2p2
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sa-n1p1"]
)";

double number(const std::string& text) {
  double v = std::nan("");
  return absl::SimpleAtod(text, &v) ? v : std::nan("");
}

// Polls an instant query until its first value is `want` (bounded, 30 s); on failure the last
// answer goes with the caller's next assertion.
bool waitQuery(Prometheus& p, const std::string& promql, const std::string& want) {
  std::string got;
  if (eventually([&] { return (got = p.queryScalar(promql)) == want; }, 30s,
                 promql + " to be " + want, 500ms)) {
    return true;
  }
  UNSCOPED_INFO("the last answer to " << promql << ": '" << got << "'");
  return false;
}

// The JSON document ferryctl printed after its "sampling" line (stderr and stdout share the log).
nlohmann::json frameOf(const std::string& log) {
  size_t brace = log.find('{');
  REQUIRE(brace != std::string::npos);
  auto j = nlohmann::json::parse(log.substr(brace), nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

const nlohmann::json& row(const nlohmann::json& frame, const std::string& name) {
  for (const auto& r : frame["rows"]) {
    if (r["namespace"] == "default" && r["name"] == name) {
      return r;
    }
  }
  FAIL("no row default/" << name << " in " << frame.dump());
  return frame;  // not reached
}

std::unique_ptr<harness::Process> spawnStat(Mesh& m, const std::vector<std::string>& args,
                                            const std::string& log_name) {
  std::vector<std::string> argv = {FERRYCTL_PATH, "stat"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = harness::spawnProcess({}, argv, m.cluster().scratchDir() + "/" + log_name);
  REQUIRE_OK(p);
  return *std::move(p);
}

// Waits (bounded, 10 s) until a direct-mode ferryctl stat has taken its first scrape.
void waitSampling(harness::Process& p) {
  auto sampling = [&] { return p.log().find("ferryctl: sampling") != std::string::npos; };
  REQUIRE(eventually([&] { return sampling() || !p.running(); }, 10s,
                     "ferryctl stat's first scrape (or its exit)"));
  INFO("ferryctl stat output: " << p.log());
  REQUIRE(p.log().find("ferryctl: sampling 2 agent(s)") != std::string::npos);
}

std::set<std::string> exportedNames(uint16_t port) {
  auto samples = cli::parsePromText(
      metrics::testing::httpGet(absl::StrCat("http://127.0.0.1:", port, "/metrics")));
  REQUIRE_OK(samples);
  std::set<std::string> names;
  for (const auto& s : *samples) {
    names.insert(s.name);
  }
  return names;
}

// Scrapes until the gauge `name` reads `value` (bounded, 15 s).
bool waitGauge(uint16_t port, const std::string& name, double value) {
  return eventually(
      [&] {
        auto v = metrics::testing::sampleValue(
            metrics::testing::httpGet(absl::StrCat("http://127.0.0.1:", port, "/metrics")), name,
            {});
        return v && *v == value;
      },
      15s, absl::StrCat(name, " on port ", port, " to read ", value), 100ms);
}

TEST_CASE(
    "ferryctl stat: exact counts and bucket-true quantiles from the agents, the same "
    "through a real Prometheus, and the alert rules' metrics all exported",
    "[privileged][e2e][telemetry][stat]") {
  FERRY_REQUIRE_ROOT();
  const uint16_t controller_metrics = freeLoopbackPort();
  MeshOptions options;
  options.extra_controller_flags = {absl::StrCat("--metrics-port=", controller_metrics)};
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE_OK(m.applyManifest("service-shop.yaml", httpService("shop", kShopVip, 8081, "n2p1")));
  REQUIRE_OK(m.applyManifest("service-slow.yaml", httpService("slow", kSlowVip, 8082, "n2p2")));
  REQUIRE_OK(m.applyManifest("allow-n1p1.yaml", kAllowN1p1));
  REQUIRE_OK(m.startApp(m.pod(2, 1),
                        {"http-app", "--port=8081", "--name=shop", "--behavior=fail50"}, 8081));
  REQUIRE_OK(m.startApp(m.pod(2, 2),
                        {"http-app", "--port=8082", "--name=slow", "--behavior=sleep:300"}, 8082));
  REQUIRE_OK(m.startApp(m.pod(2, 1), {"echo-server", "--port=8080"}, 8080));
  auto prometheus =
      Prometheus::start(m.cluster().scratchDir(), {m.metricsPort(1), m.metricsPort(2)});
  REQUIRE_OK(prometheus);
  Prometheus& prom = **prometheus;
  auto sendTcp = [&](int n) {
    for (int i = 0; i < n; ++i) {
      REQUIRE_OK(m.run(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "send",
                                     absl::StrCat("--host=", kWebVip), "--port=80", "--text=hi"}));
    }
  };

  // Warm-up: every series exists (and Prometheus has it) before the measured traffic, so
  // Prometheus' increase() sees all of that traffic (a counter born inside a window is not).
  nlohmann::json warm = httpLoad(m, kShopVip, 2, 1);
  REQUIRE(statusCount(warm, "200") == 1);
  REQUIRE(statusCount(warm, "503") == 1);
  REQUIRE(statusCount(httpLoad(m, kSlowVip, 2, 1), "200") == 2);
  sendTcp(1);
  const std::string shop_total =
      "sum(istio_requests_total{reporter=\"destination\",destination_service_name=\"shop\"})";
  const std::string slow_total =
      "sum(istio_requests_total{reporter=\"destination\",destination_service_name=\"slow\"})";
  const std::string web_tcp =
      "sum(istio_tcp_connections_closed_total{reporter=\"destination\","
      "destination_service_name=\"web\"})";
  INFO("prometheus log: " << prom.log());
  REQUIRE(waitQuery(prom, shop_total, "2"));
  REQUIRE(waitQuery(prom, slow_total, "2"));
  REQUIRE(waitQuery(prom, web_tcp, "1"));
  // A scrape after the warm-up and before the traffic: Prometheus' window will start there.
  const double t0 = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  const std::string last_scrape =
      "max(timestamp(istio_requests_total{reporter=\"destination\","
      "destination_service_name=\"shop\"}))";
  double t1 = 0;
  REQUIRE(eventually([&] { return (t1 = number(prom.queryScalar(last_scrape))) > t0; }, 10s,
                     "a scrape after the warm-up", 100ms));

  // The measured window: 20 s, both views (per Service and per workload) at once.
  const std::string agents =
      absl::StrCat("127.0.0.1:", m.metricsPort(1), ",127.0.0.1:", m.metricsPort(2));
  auto services = spawnStat(m, {"services", "--agents", agents, "--window", "20s", "-o", "json"},
                            "stat-services.log");
  auto workloads = spawnStat(m, {"workloads", "--agents", agents, "--window", "20s", "-o", "json"},
                             "stat-workloads.log");
  waitSampling(*services);
  waitSampling(*workloads);
  const absl::Time traffic_start = absl::Now();
  nlohmann::json shop = httpLoad(m, kShopVip, 20, 2);
  CHECK(statusCount(shop, "200") == 10);
  CHECK(statusCount(shop, "503") == 10);
  CHECK(statusCount(httpLoad(m, kSlowVip, 6, 2), "200") == 6);
  sendTcp(5);
  const absl::Duration traffic = absl::Now() - traffic_start;
  std::cout << "stat e2e: traffic took " << absl::FormatDuration(traffic) << " of the 20s window\n";
  // The window is only meaningful if the traffic fits in it, with room for the last counts.
  REQUIRE(traffic < absl::Seconds(15));
  REQUIRE(services->wait(absl::Seconds(60)).value_or(-1) == 0);
  REQUIRE(workloads->wait(absl::Seconds(60)).value_or(-1) == 0);
  nlohmann::json by_service = frameOf(services->log());
  nlohmann::json by_workload = frameOf(workloads->log());
  INFO("services: " << by_service.dump(1) << "\nworkloads: " << by_workload.dump(1));
  CHECK(by_service["by"] == "service");
  CHECK(by_service["source"] == "agents");
  const double window = by_service["window_seconds"].get<double>();
  CHECK(window >= 20.0);
  CHECK(window < 25.0);

  const nlohmann::json& shop_row = row(by_service, "shop");
  CHECK(shop_row["requests"] == 20.0);
  CHECK(shop_row["failures"] == 10.0);
  CHECK(shop_row["success_rate"] == 0.5);
  CHECK(shop_row["rps"].get<double>() == Approx(20.0 / window));
  const auto& shop_ms = shop_row["latency_ms"];
  REQUIRE(shop_ms["p50"].is_number());
  CHECK(shop_ms["p50"].get<double>() <= shop_ms["p95"].get<double>());
  CHECK(shop_ms["p95"].get<double>() <= shop_ms["p99"].get<double>());
  CHECK(shop_ms["p99"].get<double>() <= 250.0);  // an app answering at once, no sleep

  const nlohmann::json& slow_row = row(by_service, "slow");
  CHECK(slow_row["requests"] == 6.0);
  CHECK(slow_row["failures"] == 0.0);
  CHECK(slow_row["success_rate"] == 1.0);
  // All six in the (250, 500] bucket: 250 + 250 q.
  CHECK(slow_row["latency_ms"]["p50"].get<double>() == Approx(375.0));
  CHECK(slow_row["latency_ms"]["p95"].get<double>() == Approx(487.5));
  CHECK(slow_row["latency_ms"]["p99"].get<double>() == Approx(497.5));

  const nlohmann::json& web_row = row(by_service, "web");
  CHECK(web_row["tcp"]["opened"] == 5.0);
  CHECK(web_row["tcp"]["open"] == 0.0);
  CHECK(web_row["requests"] == 0.0);
  CHECK(web_row["success_rate"].is_null());

  // Per workload: n2p1 serves shop and web, n2p2 serves slow.
  CHECK(by_workload["by"] == "workload");
  CHECK(row(by_workload, "n2p1")["requests"] == 20.0);
  CHECK(row(by_workload, "n2p1")["failures"] == 10.0);
  CHECK(row(by_workload, "n2p1")["tcp"]["opened"].get<double>() >= 5.0);
  CHECK(row(by_workload, "n2p2")["requests"] == 6.0);
  CHECK(row(by_workload, "n2p2")["latency_ms"]["p99"].get<double>() == Approx(497.5));

  // The same window through Prometheus: once it has every count, ask over a range that starts
  // just before the scrape t1 (after the warm-up, before the traffic).
  REQUIRE(waitQuery(prom, shop_total, "22"));
  REQUIRE(waitQuery(prom, slow_total, "8"));
  REQUIRE(waitQuery(prom, web_tcp, "6"));
  const double since_t1 = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()) - t1;
  const std::string prom_window = absl::StrCat(static_cast<int64_t>((since_t1 + 0.5) * 1000), "ms");
  auto via_prom = harness::runProcess({},
                                      {FERRYCTL_PATH, "stat", "services", "--prometheus",
                                       prom.url(), "--window", prom_window, "-o", "json"},
                                      absl::Seconds(30));
  REQUIRE_OK(via_prom);
  INFO("ferryctl --prometheus: " << via_prom->err << via_prom->out);
  REQUIRE(via_prom->exit_code == 0);
  nlohmann::json p = nlohmann::json::parse(via_prom->out);
  CHECK(p["source"] == "prometheus");
  const nlohmann::json& p_shop = row(p, "shop");
  const nlohmann::json& p_slow = row(p, "slow");
  const nlohmann::json& p_web = row(p, "web");
  // Ratios and quantiles agree exactly: every series of a row has the same scrape times, so
  // increase()'s extrapolation scales them alike. Counts agree up to that extrapolation
  // (at most one scrape interval over a window of tens of seconds).
  CHECK(p_shop["success_rate"].get<double>() == Approx(0.5).epsilon(1e-9));
  CHECK(p_slow["success_rate"].get<double>() == Approx(1.0).epsilon(1e-9));
  for (const char* q : {"p50", "p95", "p99"}) {
    INFO(q);
    CHECK(p_slow["latency_ms"][q].get<double>() ==
          Approx(slow_row["latency_ms"][q].get<double>()).epsilon(1e-9));
  }
  auto ratio = [](const nlohmann::json& a, const nlohmann::json& b) {
    return a.get<double>() / b.get<double>();
  };
  std::cout << "stat e2e: Prometheus/direct requests: shop "
            << ratio(p_shop["requests"], shop_row["requests"]) << ", slow "
            << ratio(p_slow["requests"], slow_row["requests"]) << "; tcp opened web "
            << ratio(p_web["tcp"]["opened"], web_row["tcp"]["opened"]) << "\n";
  for (double r : {ratio(p_shop["requests"], shop_row["requests"]),
                   ratio(p_slow["requests"], slow_row["requests"]),
                   ratio(p_web["tcp"]["opened"], web_row["tcp"]["opened"])}) {
    CHECK(r >= 0.95);
    CHECK(r <= 1.2);
  }
  CHECK(p_web["tcp"]["open"] == 0.0);

  // Every metric the rules read is exported by an agent or the controller, by that name.
  std::set<std::string> exported = exportedNames(m.metricsPort(1));
  exported.merge(exportedNames(m.metricsPort(2)));
  exported.merge(exportedNames(controller_metrics));
  YAML::Node rules = YAML::LoadFile(FERRY_RULES_FILE);
  std::set<std::string> used, recorded, read_records;
  const std::regex metric(R"(\b(istio|ferry)_[a-z0-9_]+)"), record(R"(\bferry:[a-z0-9_:]+)");
  for (const auto& group : rules["groups"]) {
    for (const auto& rule : group["rules"]) {
      if (rule["record"]) {
        recorded.insert(rule["record"].as<std::string>());
      }
      const std::string expr = rule["expr"].as<std::string>();
      for (std::sregex_iterator it(expr.begin(), expr.end(), metric), end; it != end; ++it) {
        used.insert(it->str());
      }
      for (std::sregex_iterator it(expr.begin(), expr.end(), record), end; it != end; ++it) {
        read_records.insert(it->str());
      }
    }
  }
  std::cout << "stat e2e: the rules read " << used.size() << " exported metric names and "
            << read_records.size() << " recorded series\n";
  CHECK(used.size() >= 7);
  for (const std::string& name : used) {
    INFO("metric in ferry-rules.yaml: " << name);
    CHECK(exported.count(name) == 1);
  }
  for (const std::string& name : read_records) {
    INFO("recorded series read by an alert: " << name);
    CHECK(recorded.count(name) == 1);
  }

  // --watch: one JSON line per frame, bounded by --count; no traffic now, so no rate, no
  // success rate and no latency (never a made-up 100%).
  auto watch = harness::runProcess({},
                                   {FERRYCTL_PATH, "stat", "services", "--agents", agents,
                                    "--window", "1s", "--watch", "--count", "2", "-o", "json"},
                                   absl::Seconds(30));
  REQUIRE_OK(watch);
  REQUIRE(watch->exit_code == 0);
  std::vector<std::string> frames = absl::StrSplit(watch->out, '\n', absl::SkipEmpty());
  REQUIRE(frames.size() == 2);
  for (const std::string& line : frames) {
    nlohmann::json frame = nlohmann::json::parse(line);
    const nlohmann::json& idle = row(frame, "shop");
    CHECK(idle["requests"] == 0.0);
    CHECK(idle["success_rate"].is_null());
    CHECK(idle["latency_ms"]["p50"].is_null());
  }
  auto table = harness::runProcess(
      {}, {FERRYCTL_PATH, "stat", "workloads", "--agents", agents, "--window", "1s"},
      absl::Seconds(30));
  REQUIRE_OK(table);
  std::cout << "stat e2e: ferryctl stat workloads (idle):\n" << table->out;
  CHECK(table->out.starts_with("NAMESPACE  WORKLOAD  RPS"));
  CHECK(table->out.find("default    n2p2") != std::string::npos);

  // ferry_controlplane_connected (the config-stale alert): 1, 0 while the controller is away,
  // 1 once it is back.
  CHECK(waitGauge(m.metricsPort(1), "ferry_controlplane_connected", 1));
  REQUIRE_OK(m.stopController());
  CHECK(waitGauge(m.metricsPort(1), "ferry_controlplane_connected", 0));
  CHECK(waitGauge(m.metricsPort(2), "ferry_controlplane_connected", 0));
  REQUIRE_OK(m.startController());
  CHECK(waitGauge(m.metricsPort(1), "ferry_controlplane_connected", 1));
}

}  // namespace
}  // namespace ferry::e2e
