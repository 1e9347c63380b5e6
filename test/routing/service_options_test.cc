// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>
#include <random>

#include "routing/cluster.h"
#include "routing/service_options.h"

namespace ferry::routing {
namespace {

TEST_CASE("service options: no annotation keeps every default", "[routing]") {
  ServiceOptions o = parseServiceOptions({{"unrelated.example/x", "1"}});
  CHECK(o.errors.empty());
  CHECK(o.cluster == ClusterOptions{});

  ClusterOptions defaults;
  defaults.base_ejection = absl::Milliseconds(200);
  defaults.local_zone = "z1";
  CHECK(parseServiceOptions({}, defaults).cluster == defaults);
}

TEST_CASE("service options: good values set their field only", "[routing]") {
  ServiceOptions o = parseServiceOptions({
      {"ferry.dev/lb-policy", "round-robin"},
      {"ferry.dev/outlier-consecutive-errors", "3"},
      {"ferry.dev/outlier-base-ejection-ms", "250"},
      {"ferry.dev/outlier-max-ejection-percent", "100"},
      {"ferry.dev/max-connections", "2"},
      {"ferry.dev/max-pending-requests", "0"},
      {"ferry.dev/max-requests", "4294967295"},
  });
  CHECK(o.errors.empty());
  CHECK(o.cluster.lb == LbPolicy::kRoundRobin);
  CHECK(o.cluster.consecutive_errors == 3);
  CHECK(o.cluster.base_ejection == absl::Milliseconds(250));
  CHECK(o.cluster.max_ejection_percent == 100);
  CHECK(o.cluster.max_connections == 2);
  CHECK(o.cluster.max_pending_requests == 0);
  CHECK(o.cluster.max_requests == 4294967295u);
  CHECK(o.cluster.local_zone.empty());

  CHECK(parseServiceOptions({{"ferry.dev/lb-policy", "least-request"}},
                            ClusterOptions{.lb = LbPolicy::kRoundRobin})
            .cluster.lb == LbPolicy::kLeastRequest);
}

TEST_CASE("service options: each bad value is refused with a reason, its default kept",
          "[routing]") {
  struct Row {
    const char* name;
    const char* value;
    const char* message;
  };
  const Row rows[] = {
      {"ferry.dev/lb-policy", "random",
       "annotation ferry.dev/lb-policy: \"random\" is not least-request or round-robin; keeping "
       "the default least-request"},
      {"ferry.dev/lb-policy", "ROUND_ROBIN",
       "annotation ferry.dev/lb-policy: \"ROUND_ROBIN\" is not least-request or round-robin; "
       "keeping the default least-request"},
      {"ferry.dev/outlier-consecutive-errors", "-1",
       "annotation ferry.dev/outlier-consecutive-errors: \"-1\" is not a whole number from 0 to "
       "1000000; keeping the default 5"},
      {"ferry.dev/outlier-consecutive-errors", "2.5",
       "annotation ferry.dev/outlier-consecutive-errors: \"2.5\" is not a whole number from 0 to "
       "1000000; keeping the default 5"},
      {"ferry.dev/outlier-base-ejection-ms", "0",
       "annotation ferry.dev/outlier-base-ejection-ms: \"0\" is not a whole number from 1 to "
       "3600000; keeping the default 30000"},
      {"ferry.dev/outlier-base-ejection-ms", "30s",
       "annotation ferry.dev/outlier-base-ejection-ms: \"30s\" is not a whole number from 1 to "
       "3600000; keeping the default 30000"},
      {"ferry.dev/outlier-base-ejection-ms", "3600001",
       "annotation ferry.dev/outlier-base-ejection-ms: \"3600001\" is not a whole number from 1 "
       "to 3600000; keeping the default 30000"},
      {"ferry.dev/outlier-max-ejection-percent", "101",
       "annotation ferry.dev/outlier-max-ejection-percent: \"101\" is not a whole number from 0 "
       "to 100; keeping the default 50"},
      {"ferry.dev/max-connections", "0",
       "annotation ferry.dev/max-connections: \"0\" is not a whole number from 1 to 4294967295; "
       "keeping the default 1024"},
      {"ferry.dev/max-connections", "4294967296",
       "annotation ferry.dev/max-connections: \"4294967296\" is not a whole number from 1 to "
       "4294967295; keeping the default 1024"},
      {"ferry.dev/max-pending-requests", "",
       "annotation ferry.dev/max-pending-requests: \"\" is not a whole number from 0 to "
       "4294967295; keeping the default 1024"},
      {"ferry.dev/max-requests", "many",
       "annotation ferry.dev/max-requests: \"many\" is not a whole number from 1 to 4294967295; "
       "keeping the default 1024"},
  };
  for (const Row& row : rows) {
    INFO(row.name << "=" << row.value);
    // A good annotation beside the bad one still applies.
    const char* other = std::string(row.name) == "ferry.dev/max-requests"
                            ? "ferry.dev/max-connections"
                            : "ferry.dev/max-requests";
    ServiceOptions o = parseServiceOptions({{row.name, row.value}, {other, "7"}});
    REQUIRE(o.errors.size() == 1);
    CHECK(o.errors[0] == row.message);
    ClusterOptions want;
    (std::string(other) == "ferry.dev/max-requests" ? want.max_requests : want.max_connections) = 7;
    CHECK(o.cluster == want);
  }
}

TEST_CASE("service options: every bad annotation is reported", "[routing]") {
  ServiceOptions o = parseServiceOptions({{"ferry.dev/lb-policy", "x"},
                                          {"ferry.dev/max-connections", "-3"},
                                          {"ferry.dev/max-requests", "1"}});
  CHECK(o.errors.size() == 2);
  CHECK(o.cluster.max_requests == 1);
  CHECK(o.cluster.max_connections == 1024);
}

TEST_CASE("outlier-consecutive-errors 0 turns ejection off", "[routing]") {
  ServiceOptions o = parseServiceOptions({{"ferry.dev/outlier-consecutive-errors", "0"}});
  REQUIRE(o.errors.empty());
  Cluster cluster({{.ip = "10.244.1.10", .port = 80}, {.ip = "10.244.1.11", .port = 80}},
                  o.cluster);
  std::mt19937_64 rng(1);
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  for (int i = 0; i < 100; ++i) {
    auto pick = cluster.pick(rng, now);
    REQUIRE(pick.has_value());
    cluster.done(*pick, Outcome::kHttp5xx, now);
  }
  CHECK(cluster.ejectionsTotal() == 0);
  CHECK(cluster.healthyCount(now) == 2);
}

}  // namespace
}  // namespace ferry::routing
