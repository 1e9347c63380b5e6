// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// RateLimits on a fake clock: which pods and ports a policy limits (selector, Service target,
// named ports), total + identity + override buckets, refunds that keep a flooder off the total,
// buckets that survive an unchanged policy, and a refused policy's limit to zero.
#include "agent/state/rate_limits.h"

#include <catch2/catch.hpp>

namespace ferry::agent {
namespace {

constexpr const char* kA = "spiffe://cluster.local/ns/demo/sa/a";
constexpr const char* kB = "spiffe://cluster.local/ns/demo/sa/b";
constexpr const char* kBatch = "spiffe://cluster.local/ns/jobs/sa/batch";

model::NodeSnapshot snapshotWith(std::vector<model::RateLimitPolicy> limits) {
  model::NodeSnapshot s;
  s.node = "n1";
  model::Workload web;
  web.uid = "web-1";
  web.key = {"demo", "web-1"};
  web.node = "n1";
  web.labels = {{"app", "web"}};
  model::Workload remote = web;
  remote.uid = "web-2";
  remote.node = "n2";
  s.workloads = {web, remote};
  model::Service svc;
  svc.key = {"demo", "web"};
  svc.selector = {{"app", "web"}};
  svc.ports = {{"http", 80, 8080, "", "TCP", "http"}, {"grpc", 90, 0, "grpc-port", "TCP", ""}};
  s.services = {svc};
  model::ServiceEndpoints eps;
  eps.service = svc.key;
  eps.named_ports = {{"grpc", 9090}};
  s.endpoints = {eps};
  s.rate_limits = std::move(limits);
  return s;
}

model::RateLimitPolicy limit(std::string name) {
  model::RateLimitPolicy p;
  p.key = {"demo", std::move(name)};
  p.target_service = "web";
  return p;
}

struct Fixture {
  ratelimit::Nanos now = ratelimit::kSecond;
  RateLimits limits{[this] { return now; }};
  int admitted(const std::string& principal, int attempts, uint16_t port = 8080) {
    int n = 0;
    for (int i = 0; i < attempts; ++i) {
      n += limits.check("web-1", port, principal, true).allowed ? 1 : 0;
    }
    return n;
  }
};

TEST_CASE("a Service target limits its pods on the target ports only", "[ratelimit]") {
  Fixture f;
  model::RateLimitPolicy p = limit("port80");
  p.service_port = 80;
  p.total = model::RateLimit{5, 5};
  f.limits.update(snapshotWith({p}));
  CHECK(f.admitted(kA, 20, 8080) == 5);
  CHECK(f.admitted(kA, 20, 9090) == 20);                   // another port of the pod
  CHECK(f.limits.check("web-2", 8080, kA, true).allowed);  // not a pod of this node

  model::RateLimitPolicy named = limit("named");
  named.service_port = 90;  // targetPort by name, resolved from the EndpointSlice
  named.total = model::RateLimit{2, 2};
  Fixture g;
  g.limits.update(snapshotWith({named}));
  CHECK(g.admitted(kA, 10, 9090) == 2);
  CHECK(g.admitted(kA, 10, 8080) == 10);
}

TEST_CASE("a selector target with ports, other namespaces and labels are not limited",
          "[ratelimit]") {
  Fixture f;
  model::RateLimitPolicy p;
  p.key = {"demo", "sel"};
  p.selector = model::Labels{{"app", "web"}};
  p.ports = {8080};
  p.identity = model::RateLimit{3, 3};
  model::RateLimitPolicy other = p;
  other.key = {"elsewhere", "sel"};
  other.ports.clear();
  other.identity = model::RateLimit{1, 1};
  model::RateLimitPolicy unmatched = p;
  unmatched.key.name = "db";
  unmatched.selector = model::Labels{{"app", "db"}};
  unmatched.identity = model::RateLimit{1, 1};
  f.limits.update(snapshotWith({p, other, unmatched}));
  CHECK(f.admitted(kA, 10) == 3);
  CHECK(f.admitted(kA, 10, 7000) == 10);
}

TEST_CASE(
    "identity buckets isolate clients, a flooder refused by its own bucket spends no "
    "total",
    "[ratelimit]") {
  Fixture f;
  model::RateLimitPolicy p = limit("fair");
  p.total = model::RateLimit{10, 10};
  p.identity = model::RateLimit{4, 4};
  f.limits.update(snapshotWith({p}));
  CHECK(f.admitted(kA, 1000) == 4);
  CHECK(f.admitted(kB, 1000) == 4);
  CHECK(f.admitted("", 1000) == 2);  // plaintext peers share one bucket; the total has 2 left
  RateLimitVerdict v = f.limits.check("web-1", 8080, kA, true);
  CHECK_FALSE(v.allowed);
  CHECK(v.policy == "demo/fair");
  CHECK(v.retryAfterSeconds() == "1");
  f.now += ratelimit::kSecond / 2;  // 5 total tokens, 2 per identity
  CHECK(f.admitted(kA, 1000) == 2);
  CHECK(f.admitted(kB, 1000) == 2);
  auto counts = f.limits.counts();
  REQUIRE(counts.size() == 1);
  CHECK(counts[0].requests == (996 + 996 + 998 + 1 + 998 + 998));
}

TEST_CASE("an override by ServiceAccount replaces the identity limit for its clients",
          "[ratelimit]") {
  Fixture f;
  model::RateLimitPolicy p = limit("ovr");
  p.identity = model::RateLimit{1, 1};
  p.overrides = {{model::RateLimit{7, 7}, {{"jobs", "batch"}, {"demo", "b"}}}};
  f.limits.update(snapshotWith({p}));
  CHECK(f.admitted(kA, 100) == 1);
  // One bucket shared by the clients of the override.
  CHECK(f.admitted(kBatch, 5) == 5);
  CHECK(f.admitted(kB, 100) == 2);  // what the override's bucket has left
}

TEST_CASE("buckets survive an unchanged policy and restart when it changes", "[ratelimit]") {
  Fixture f;
  model::RateLimitPolicy p = limit("keep");
  p.total = model::RateLimit{3, 3};
  f.limits.update(snapshotWith({p}));
  CHECK(f.admitted(kA, 10) == 3);
  f.limits.update(snapshotWith({p}));
  CHECK(f.admitted(kA, 10) == 0);  // same policy: same (empty) bucket
  p.total = model::RateLimit{4, 4};
  f.limits.update(snapshotWith({p}));
  CHECK(f.admitted(kA, 10) == 4);
}

TEST_CASE("a refused policy's stand-in limits its target to zero", "[ratelimit]") {
  Fixture f;
  model::RateLimitPolicy p;
  p.key = {"demo", "broken"};
  p.refused = "spec.total.requestsPerSecond: bad";
  p.total = model::RateLimit{0, 0};
  f.limits.update(snapshotWith({p}));
  CHECK(f.admitted(kA, 10) == 0);
  CHECK_FALSE(f.limits.check("web-1", 8080, "", false).allowed);
  REQUIRE(f.limits.failingClosed().size() == 1);
  CHECK(f.limits.counts()[0].connections == 1);
}

}  // namespace
}  // namespace ferry::agent
