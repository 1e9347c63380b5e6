// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// ferryctl stat's arithmetic: the text format, histogram_quantile as PromQL computes it,
// counter deltas per series and agent, rows per Service or workload, and the PromQL it asks.

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/stat.h"
#include "cli/stat_math.h"

namespace ferry::cli {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

TEST_CASE("stat: the text format parses names, escaped labels, special values and timestamps",
          "[cli][stat]") {
  auto samples = parsePromText(
      "# HELP x help\n# TYPE x counter\n"
      "x_total{a=\"1\",b=\"q\\\"uote\\\\\",} 3\n"
      "\n"
      "y 2.5 1700000000000\n"
      "h_bucket{le=\"+Inf\"} +Inf\n"
      "z{ a = \"sp ace\" } NaN\n");
  REQUIRE(samples.ok());
  REQUIRE(samples->size() == 4);
  CHECK((*samples)[0].name == "x_total");
  CHECK((*samples)[0].labels == std::map<std::string, std::string>{{"a", "1"}, {"b", "q\"uote\\"}});
  CHECK((*samples)[0].value == 3);
  CHECK((*samples)[1].value == 2.5);
  CHECK((*samples)[2].labels.at("le") == "+Inf");
  CHECK(std::isinf((*samples)[2].value));
  CHECK((*samples)[3].labels.at("a") == "sp ace");
  CHECK(std::isnan((*samples)[3].value));

  struct Row {
    std::string page;
    std::string error;
  };
  for (const Row& row : std::vector<Row>{{"ok 1\nbroken\n", "metrics line 2: no value"},
                                         {"x{a=\"1\" 2\n", "metrics line 1: bad labels"},
                                         {"x{a=1} 2\n", "metrics line 1: bad labels"},
                                         {"x one\n", "metrics line 1: bad value"}}) {
    INFO(row.page);
    auto bad = parsePromText(row.page);
    REQUIRE_FALSE(bad.ok());
    CHECK_THAT(std::string(bad.status().message()), Catch::StartsWith(row.error));
  }
}

TEST_CASE("stat: histogram quantiles interpolate as PromQL's histogram_quantile", "[cli][stat]") {
  // 100 observations: 10 <= 5 ms, 60 in (5, 10], 20 in (10, 25], 10 in (25, +Inf).
  const std::vector<Bucket> b = {{5, 10}, {10, 70}, {25, 90}, {kInf, 100}};
  struct Row {
    double q;
    double want;
  };
  for (const Row& row : std::vector<Row>{
           {0.0, 0.0},   // rank 0 falls in the first bucket, which starts at 0
           {0.05, 2.5},  // rank 5 of 10 in [0, 5]
           {0.1, 5.0},   // the first bucket's bound exactly
           {0.5, 10 * 0.5 + 5 * (40.0 / 60.0)},  // rank 50: 40 of 60 into (5, 10]
           {0.7, 10.0},
           {0.8, 17.5},   // rank 80: 10 of 20 into (10, 25]
           {0.95, 25.0},  // in +Inf: the highest finite bound
           {1.0, 25.0},
       }) {
    INFO("q=" << row.q);
    CHECK(histogramQuantile(row.q, b) == Approx(row.want).margin(1e-12));
  }
  // Order of the buckets does not matter; a falling count is evened out as PromQL does.
  CHECK(histogramQuantile(0.5, {{kInf, 100}, {25, 90}, {5, 10}, {10, 70}}) ==
        Approx(histogramQuantile(0.5, b)));
  // {5: 10, 10: 8 -> 10, +Inf: 20}: rank 10 is reached in the first bucket.
  CHECK(histogramQuantile(0.5, {{5, 10}, {10, 8}, {kInf, 20}}) == 5);
  // Degenerate inputs.
  CHECK(std::isnan(histogramQuantile(0.5, {{5, 0}, {kInf, 0}})));  // no observations
  CHECK(std::isnan(histogramQuantile(0.5, {{5, 3}, {10, 4}})));    // no +Inf bucket
  CHECK(std::isnan(histogramQuantile(0.5, {})));
  CHECK(histogramQuantile(-0.1, b) == -kInf);
  CHECK(histogramQuantile(1.1, b) == kInf);
  CHECK(histogramQuantile(0.5, {{-1, 10}, {kInf, 10}}) == -1);  // a bound <= 0 is its own start
}

std::string requestLines(const std::string& service, const std::string& workload,
                         const std::string& code, double count, const std::string& reporter) {
  return absl::StrCat("istio_requests_total{reporter=\"", reporter,
                      "\",destination_service_namespace=\"shop\",destination_service_name=\"",
                      service, "\",destination_workload_namespace=\"shop\",destination_workload=\"",
                      workload, "\",response_code=\"", code, "\"} ", count, "\n");
}

std::string bucketLines(const std::string& service, const std::vector<Bucket>& b) {
  std::string out;
  for (const Bucket& x : b) {
    absl::StrAppend(&out,
                    "istio_request_duration_milliseconds_bucket{reporter=\"destination\","
                    "destination_service_namespace=\"shop\",destination_service_name=\"",
                    service, "\",destination_workload_namespace=\"shop\",destination_workload=\"",
                    service, "-v1\",le=\"", std::isinf(x.upper) ? "+Inf" : absl::StrCat(x.upper),
                    "\"} ", x.count, "\n");
  }
  return out;
}

std::vector<PromSample> page(const std::string& text) {
  auto s = parsePromText(text);
  REQUIRE(s.ok());
  return *s;
}

TEST_CASE("stat: rows are deltas per series and agent, summed per Service or workload",
          "[cli][stat]") {
  Scrape before, after;
  // Agent a: cart (workload cart-v1) had 100 ok + 5 failed; 50 ok, 3x 503, 2x 0 and 7x 404
  // since. Agent b: cart (cart-v2) restarted (its counter fell from 40 to 10: all 10 are new).
  before.by_agent["a"] = page(requestLines("cart", "cart-v1", "200", 100, "destination") +
                              requestLines("cart", "cart-v1", "503", 5, "destination") +
                              requestLines("cart", "cart-v1", "200", 999, "source") +
                              bucketLines("cart", {{5, 10}, {10, 20}, {kInf, 30}}));
  after.by_agent["a"] = page(requestLines("cart", "cart-v1", "200", 150, "destination") +
                             requestLines("cart", "cart-v1", "503", 8, "destination") +
                             requestLines("cart", "cart-v1", "0", 2, "destination") +
                             requestLines("cart", "cart-v1", "404", 7, "destination") +
                             requestLines("cart", "cart-v1", "200", 5000, "source") +
                             bucketLines("cart", {{5, 30}, {10, 90}, {kInf, 110}}));
  before.by_agent["b"] = page(requestLines("cart", "cart-v2", "200", 40, "destination"));
  after.by_agent["b"] = page(requestLines("cart", "cart-v2", "200", 10, "destination") +
                             requestLines("web", "web-v1", "200", 4, "destination") +
                             "istio_tcp_connections_opened_total{reporter=\"destination\","
                             "destination_service_namespace=\"shop\",destination_service_name="
                             "\"web\"} 6\n"
                             "istio_tcp_connections_closed_total{reporter=\"destination\","
                             "destination_service_namespace=\"shop\",destination_service_name="
                             "\"web\"} 4\n");

  std::vector<StatRow> rows = statRows(before, after, 10.0, {.by = StatBy::kService});
  REQUIRE(rows.size() == 2);
  const StatRow& cart = rows[0];
  CHECK(cart.name == "cart");
  CHECK(cart.requests == 50 + 3 + 2 + 7 + 10);
  CHECK(cart.failures == 3 + 2);
  CHECK(cart.rps() == Approx(7.2));
  REQUIRE(cart.successRate());
  CHECK(*cart.successRate() == Approx(67.0 / 72.0));
  // Bucket deltas {5: 20, 10: 70, +Inf: 80}: p50 rank 40 is 20 of 50 into (5, 10].
  REQUIRE(cart.p50);
  CHECK(*cart.p50 == Approx(5 + 5 * (20.0 / 50.0)));
  CHECK(*cart.p99 == 10);  // in +Inf
  const StatRow& web = rows[1];
  CHECK(web.name == "web");
  CHECK(web.requests == 4);  // a new series: all of it is in the window
  CHECK_FALSE(web.p50);      // no latency histogram
  CHECK(web.tcp_opened == 6);
  CHECK(web.tcp_open == 2);

  std::vector<StatRow> by_workload = statRows(before, after, 10.0, {.by = StatBy::kWorkload});
  // The TCP series above carry no workload labels: they land in an "unknown" row, as Istio
  // names what it does not know.
  REQUIRE(by_workload.size() == 4);
  CHECK(by_workload[3].ns == "unknown");
  CHECK(by_workload[3].tcp_open == 2);
  CHECK(by_workload[0].name == "cart-v1");
  CHECK(by_workload[0].requests == 62);
  CHECK(by_workload[1].name == "cart-v2");
  CHECK(by_workload[1].requests == 10);

  std::vector<StatRow> source = statRows(before, after, 10.0, {.reporter = "source"});
  REQUIRE(source.size() == 1);
  CHECK(source[0].requests == 4001);
  CHECK(statRows(before, after, 10.0, {.ns = "other"}).empty());
  // No requests: no success rate (not 100%, not 0%).
  StatRow idle;
  CHECK_FALSE(idle.successRate());
}

TEST_CASE("stat: failures are 5xx and 0, nothing else", "[cli][stat]") {
  for (const char* code : {"500", "503", "599", "0"}) {
    CHECK(isFailureCode(code));
  }
  for (const char* code : {"200", "404", "403", "429", "5", "50", "5000", "unknown"}) {
    CHECK_FALSE(isFailureCode(code));
  }
}

TEST_CASE("stat: --prometheus asks PromQL over the window with the row's labels", "[cli][stat]") {
  StatQueries q = statQueries({.by = StatBy::kService, .ns = "shop"}, absl::Seconds(30));
  CHECK(q.requests ==
        "sum by (destination_service_namespace, destination_service_name) (increase("
        "istio_requests_total{reporter=\"destination\",destination_service_namespace=\"shop\"}"
        "[30000ms]))");
  CHECK(q.failures.find("response_code=~\"5..|0\"") != std::string::npos);
  CHECK(q.p99 ==
        "histogram_quantile(0.99, sum by (destination_service_namespace, "
        "destination_service_name, le) (increase(istio_request_duration_milliseconds_bucket{"
        "reporter=\"destination\",destination_service_namespace=\"shop\"}[30000ms])))");
  StatQueries w = statQueries({.by = StatBy::kWorkload, .reporter = "source"}, absl::Seconds(5));
  CHECK(w.tcp_opened ==
        "sum by (destination_workload_namespace, destination_workload) (increase("
        "istio_tcp_connections_opened_total{reporter=\"source\"}[5000ms]))");
}

TEST_CASE("stat: JSON and table name every figure, no traffic prints as null or '-'",
          "[cli][stat]") {
  StatRow r{.ns = "shop", .name = "cart", .requests = 20, .failures = 1, .seconds = 10};
  r.p50 = 4;
  StatRow idle{.ns = "shop", .name = "idle", .seconds = 10, .tcp_open = 3};
  StatArgs args;
  nlohmann::json j = statJson({r, idle}, args);
  CHECK(j["by"] == "service");
  CHECK(j["source"] == "agents");
  CHECK(j["window_seconds"] == 10.0);
  CHECK(j["rows"][0]["rps"] == 2.0);
  CHECK(j["rows"][0]["success_rate"] == 0.95);
  CHECK(j["rows"][0]["latency_ms"]["p50"] == 4.0);
  CHECK(j["rows"][0]["latency_ms"]["p95"].is_null());
  CHECK(j["rows"][1]["success_rate"].is_null());
  CHECK(j["rows"][1]["tcp"]["open"] == 3.0);
  std::string table = statTable({r, idle}, StatBy::kService);
  CHECK(table.find("SERVICE") != std::string::npos);
  CHECK(table.find("95.00%") != std::string::npos);
  CHECK(table.find("4.0ms") != std::string::npos);
}

}  // namespace
}  // namespace ferry::cli
