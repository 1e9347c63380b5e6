// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>
#include <map>
#include <random>

#include "routing/cluster.h"

namespace ferry::routing {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

std::vector<EndpointRef> endpoints(int n, const std::string& zone = "") {
  std::vector<EndpointRef> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(
        EndpointRef{.ip = "10.244.1." + std::to_string(10 + i), .port = 8080, .zone = zone});
  }
  return out;
}

// Picks until `ip` comes up (bounded) and reports `outcome` for it; other picks succeed.
void failEndpoint(Cluster& cluster, const std::string& ip, int failures, absl::Time now,
                  std::mt19937_64& rng, Outcome outcome = Outcome::kHttp5xx) {
  int reported = 0;
  for (int i = 0; i < 10000 && reported < failures; ++i) {
    auto pick = cluster.pick(rng, now);
    REQUIRE(pick.has_value());
    if (pick->endpoint.ip == ip) {
      cluster.done(*pick, outcome, now);
      ++reported;
    } else {
      cluster.done(*pick, Outcome::kSuccess, now);
    }
  }
  REQUIRE(reported == failures);
}

// How often each endpoint is picked over n pick/done rounds at `now`.
std::map<std::string, int> spread(Cluster& cluster, int n, absl::Time now, std::mt19937_64& rng) {
  std::map<std::string, int> seen;
  for (int i = 0; i < n; ++i) {
    auto pick = cluster.pick(rng, now);
    REQUIRE(pick.has_value());
    ++seen[pick->endpoint.ip];
    cluster.done(*pick, Outcome::kSuccess, now);
  }
  return seen;
}

TEST_CASE("P2C least-request avoids the most loaded endpoint", "[routing]") {
  Cluster cluster(endpoints(3), ClusterOptions{});
  std::mt19937_64 rng(1);
  // Load every endpoint (P2C spreads 15 requests 5/5/5), then finish all but .10's.
  std::vector<Cluster::Pick> held;
  std::vector<Cluster::Pick> all;
  for (int i = 0; i < 15; ++i) {
    auto pick = cluster.pick(rng, kStart);
    REQUIRE(pick.has_value());
    all.push_back(*pick);
  }
  for (const auto& pick : all) {
    if (pick.endpoint.ip == "10.244.1.10") {
      held.push_back(pick);
    } else {
      cluster.done(pick, Outcome::kSuccess, kStart);
    }
  }
  REQUIRE(held.size() == 5);
  CHECK(cluster.activeRequests() == 5);
  auto seen = spread(cluster, 3000, kStart, rng);
  // Two distinct candidates are drawn: the loaded one always loses to the idle one.
  CHECK(seen["10.244.1.10"] == 0);
  CHECK(seen["10.244.1.11"] > 1000);
  CHECK(seen["10.244.1.12"] > 1000);
  for (const auto& pick : held) {
    cluster.done(pick, Outcome::kSuccess, kStart);
  }
  CHECK(cluster.activeRequests() == 0);
  // Unloaded again: every endpoint gets about a third.
  seen = spread(cluster, 3000, kStart, rng);
  CHECK(seen["10.244.1.10"] > 800);
}

TEST_CASE("round robin cycles through endpoints in order", "[routing]") {
  Cluster cluster(endpoints(3), ClusterOptions{.lb = LbPolicy::kRoundRobin});
  std::mt19937_64 rng(1);
  std::vector<std::string> order;
  for (int i = 0; i < 6; ++i) {
    auto pick = cluster.pick(rng, kStart);
    REQUIRE(pick.has_value());
    order.push_back(pick->endpoint.ip);
    cluster.done(*pick, Outcome::kSuccess, kStart);
  }
  CHECK(order == std::vector<std::string>{"10.244.1.10", "10.244.1.11", "10.244.1.12",
                                          "10.244.1.10", "10.244.1.11", "10.244.1.12"});
}

TEST_CASE("the local zone is preferred while it has a healthy endpoint", "[routing]") {
  std::vector<EndpointRef> eps = endpoints(1, "zone-a");
  for (auto& e : endpoints(2, "zone-b")) {
    e.ip += "0";  // 10.244.1.100, .110
    eps.push_back(e);
  }
  Cluster cluster(eps, ClusterOptions{.local_zone = "zone-a",
                                      .consecutive_errors = 1,
                                      .base_ejection = absl::Seconds(10),
                                      .max_ejection_percent = 100});
  std::mt19937_64 rng(2);
  auto seen = spread(cluster, 500, kStart, rng);
  CHECK(seen["10.244.1.10"] == 500);
  // The zone's only endpoint fails: traffic falls back to the other zone.
  failEndpoint(cluster, "10.244.1.10", 1, kStart, rng);
  seen = spread(cluster, 500, kStart, rng);
  CHECK(seen["10.244.1.10"] == 0);
  CHECK(seen["10.244.1.100"] + seen["10.244.1.110"] == 500);
  CHECK(seen["10.244.1.100"] > 100);
  CHECK(seen["10.244.1.110"] > 100);
  // Back after the interval: preferred again.
  seen = spread(cluster, 500, kStart + absl::Seconds(10), rng);
  CHECK(seen["10.244.1.10"] == 500);
}

TEST_CASE("no zone preference without a local zone", "[routing]") {
  std::vector<EndpointRef> eps = endpoints(2, "zone-a");
  eps[1].zone = "zone-b";
  Cluster cluster(eps, ClusterOptions{});
  std::mt19937_64 rng(2);
  auto seen = spread(cluster, 1000, kStart, rng);
  CHECK(seen["10.244.1.10"] > 300);
  CHECK(seen["10.244.1.11"] > 300);
}

TEST_CASE("outlier detection ejects, returns after the interval, and grows it", "[routing]") {
  ClusterOptions options{.consecutive_errors = 3, .base_ejection = absl::Seconds(10)};
  Cluster cluster(endpoints(4), options);
  std::mt19937_64 rng(3);
  const std::string bad = "10.244.1.11";
  // Two failures then a success: the count restarts, no ejection.
  failEndpoint(cluster, bad, 2, kStart, rng);
  failEndpoint(cluster, bad, 1, kStart, rng, Outcome::kSuccess);
  failEndpoint(cluster, bad, 2, kStart, rng, Outcome::kConnectFailure);
  CHECK(cluster.ejectionsTotal() == 0);
  CHECK(cluster.healthyCount(kStart) == 4);
  failEndpoint(cluster, bad, 1, kStart, rng, Outcome::kTimeout);
  CHECK(cluster.ejectionsTotal() == 1);
  CHECK(cluster.healthyCount(kStart) == 3);

  auto seen = spread(cluster, 2000, kStart + absl::Seconds(9), rng);
  CHECK(seen.size() == 3);
  CHECK(seen.count(bad) == 0);
  seen = spread(cluster, 2000, kStart + absl::Seconds(10), rng);
  CHECK(seen[bad] > 300);

  // Second ejection lasts twice the base interval.
  absl::Time t2 = kStart + absl::Seconds(100);
  failEndpoint(cluster, bad, 3, t2, rng);
  CHECK(cluster.ejectionsTotal() == 2);
  auto status = cluster.status(t2);
  REQUIRE(status[1].endpoint.ip == bad);
  CHECK(status[1].ejected);
  CHECK(status[1].times_ejected == 2);
  CHECK(status[1].ejected_until == t2 + absl::Seconds(20));
  CHECK(spread(cluster, 2000, t2 + absl::Seconds(19), rng)[bad] == 0);
  CHECK(spread(cluster, 2000, t2 + absl::Seconds(20), rng)[bad] > 300);
}

TEST_CASE("outlier detection never ejects more than the maximum share", "[routing]") {
  Cluster cluster(endpoints(4),
                  ClusterOptions{.consecutive_errors = 2, .max_ejection_percent = 50});
  std::mt19937_64 rng(4);
  // Every endpoint fails every request.
  for (int i = 0; i < 200; ++i) {
    auto pick = cluster.pick(rng, kStart);
    REQUIRE(pick.has_value());
    cluster.done(*pick, Outcome::kHttp5xx, kStart);
  }
  CHECK(cluster.ejectionsTotal() == 2);
  CHECK(cluster.healthyCount(kStart) == 2);

  Cluster single(endpoints(1), ClusterOptions{.consecutive_errors = 1});
  for (int i = 0; i < 10; ++i) {
    auto pick = single.pick(rng, kStart);
    REQUIRE(pick.has_value());
    single.done(*pick, Outcome::kConnectFailure, kStart);
  }
  CHECK(single.ejectionsTotal() == 0);  // 1 of 1 would be 100% > 50%
}

TEST_CASE("circuit breaker refuses picks over max_requests and reports overflow", "[routing]") {
  Cluster cluster(endpoints(2), ClusterOptions{.max_requests = 2});
  std::mt19937_64 rng(5);
  auto a = cluster.pick(rng, kStart);
  auto b = cluster.pick(rng, kStart);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK_FALSE(cluster.overflowed());
  PickFailure failure = PickFailure::kNone;
  CHECK_FALSE(cluster.pick(rng, kStart, &failure).has_value());
  CHECK(failure == PickFailure::kOverflow);
  CHECK(cluster.overflowed());
  CHECK(cluster.overflowsTotal() == 1);
  cluster.done(*a, Outcome::kSuccess, kStart);
  auto c = cluster.pick(rng, kStart, &failure);
  REQUIRE(c.has_value());
  CHECK(failure == PickFailure::kNone);
  CHECK_FALSE(cluster.overflowed());
  cluster.done(*b, Outcome::kSuccess, kStart);
  cluster.done(*c, Outcome::kSuccess, kStart);

  CHECK(cluster.overflowsTotal() == 1);
}

TEST_CASE("no endpoints: pick says so without overflow", "[routing]") {
  Cluster cluster({}, ClusterOptions{});
  std::mt19937_64 rng(6);
  PickFailure failure = PickFailure::kNone;
  CHECK_FALSE(cluster.pick(rng, kStart, &failure).has_value());
  CHECK(failure == PickFailure::kNoEndpoint);
  CHECK_FALSE(cluster.overflowed());
}

TEST_CASE("update keeps the state of endpoints that remain", "[routing]") {
  Cluster cluster(endpoints(3), ClusterOptions{.consecutive_errors = 1});
  std::mt19937_64 rng(7);
  failEndpoint(cluster, "10.244.1.12", 1, kStart, rng);
  auto held = cluster.pick(rng, kStart);
  REQUIRE(held.has_value());
  // New list: .12 moves to the front, .10 leaves, .13 arrives.
  std::vector<EndpointRef> next = {{.ip = "10.244.1.12", .port = 8080},
                                   {.ip = "10.244.1.11", .port = 8080},
                                   {.ip = "10.244.1.13", .port = 8080}};
  cluster.update(next);
  auto status = cluster.status(kStart);
  REQUIRE(status.size() == 3);
  CHECK(status[0].ejected);
  CHECK_FALSE(status[2].ejected);
  cluster.done(*held, Outcome::kSuccess, kStart);  // its endpoint may be gone or moved
  CHECK(cluster.activeRequests() == 0);
  for (const auto& s : cluster.status(kStart)) {
    CHECK(s.active_requests == 0);
  }
}

}  // namespace
}  // namespace ferry::routing
