// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Nanoseconds per rate-limit check (agent/state/rate_limits.h, what the destination agent adds to
// an HTTP request or TCP connection), beside the policy decision every such request already pays.
// Not a test; see README.md for how to run it.
//
// Figures are the thread's CPU time per check (CLOCK_THREAD_CPUTIME_ID), wall time beside it.
// Rates are set so high that every check is admitted (the admitted path is the common one and
// the one that writes the bucket); one case is over its limit (a refusal, with the refund of the
// total). The contended case runs two threads on one bucket at once.
#include <time.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "agent/state/rate_limits.h"
#include "policy/engine.h"

namespace {

using namespace ferry;

double threadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

double wallNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

model::NodeSnapshot snapshotWith(std::vector<model::RateLimitPolicy> limits) {
  model::NodeSnapshot s;
  s.node = "n1";
  model::Workload web;
  web.uid = "web-1";
  web.key = {"demo", "web-1"};
  web.node = "n1";
  web.labels = {{"app", "web"}};
  s.workloads = {web};
  s.rate_limits = std::move(limits);
  return s;
}

// Far above what a loop can take (the model's limit, 1,000,000/s, is what the decoder admits).
constexpr model::RateLimit kHigh{1'000'000'000, 1'000'000'000};

model::RateLimitPolicy limitPolicy(std::optional<model::RateLimit> total,
                                   std::optional<model::RateLimit> identity, bool override_sa) {
  model::RateLimitPolicy p;
  p.key = {"demo", "limits"};
  p.selector = model::Labels{{"app", "web"}};
  p.total = total;
  p.identity = identity;
  if (override_sa) {
    p.overrides.push_back({kHigh, {{"demo", "client-7"}}});
  }
  return p;
}

struct Case {
  const char* name;
  std::vector<model::RateLimitPolicy> limits;
  int identities;  // distinct callers cycled through
  bool refused;    // every check is expected to be refused
};

constexpr int kChecks = 2'000'000;

std::vector<std::string> principals(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    out.push_back("spiffe://cluster.local/ns/demo/sa/client-" + std::to_string(i));
  }
  return out;
}

void run(const Case& c) {
  // The clock is the real one: what the agent reads per check is part of the cost.
  agent::RateLimits limits;
  limits.update(snapshotWith(c.limits));
  const std::vector<std::string> ps = principals(c.identities);
  const std::string uid = "web-1";
  int admitted = 0;
  double cpu0 = threadCpuNs(), wall0 = wallNs();
  for (int i = 0; i < kChecks; ++i) {
    admitted += limits.check(uid, 8080, ps[i % ps.size()], true).allowed ? 1 : 0;
  }
  double cpu = (threadCpuNs() - cpu0) / kChecks, wall = (wallNs() - wall0) / kChecks;
  if ((admitted == kChecks) == c.refused) {
    std::fprintf(stderr, "%s: unexpected decisions (%d of %d admitted)\n", c.name, admitted,
                 kChecks);
  }
  std::printf("%-34s %12.1f %12.1f\n", c.name, cpu, wall);
}

void contended() {
  agent::RateLimits limits;
  limits.update(snapshotWith({limitPolicy(kHigh, std::nullopt, false)}));
  std::atomic<double> cpu_sum{0};
  auto worker = [&] {
    double cpu0 = threadCpuNs();
    for (int i = 0; i < kChecks; ++i) {
      (void)limits.check("web-1", 8080, "spiffe://cluster.local/ns/demo/sa/a", true);
    }
    cpu_sum.store(cpu_sum.load() + (threadCpuNs() - cpu0) / kChecks);
  };
  double wall0 = wallNs();
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  std::printf("%-34s %12.1f %12.1f\n", "total, 2 threads on one bucket", cpu_sum.load() / 2,
              (wallNs() - wall0) / kChecks);
}

// The L7 decision every request pays already: one ALLOW rule on principal, port, method, path.
void policyBaseline() {
  model::AuthorizationPolicy p;
  p.key = {"demo", "allow"};
  p.selector = model::Labels{{"app", "web"}};
  model::Rule r;
  r.from.push_back(model::Source{.principals = {"cluster.local/ns/demo/sa/client-0"}});
  r.to.push_back(model::Operation{.ports = {"8080"}, .methods = {"GET"}, .paths = {"/api/*"}});
  p.rules.push_back(r);
  auto compiled = policy::compile(p);
  if (!compiled.ok()) {
    std::fprintf(stderr, "baseline policy: %s\n", std::string(compiled.status().message()).c_str());
    return;
  }
  model::NodeSnapshot snap = snapshotWith({});
  snap.policies = {p};
  auto shared = policy::PolicySnapshot::build(snap.policies);
  policy::WorkloadPolicies rules = shared->forWorkload(snap.workloads[0]);
  policy::HttpRequest http{.method = "GET", .host = "web", .path = "/api/items"};
  policy::Request request;
  request.source_principal = "spiffe://cluster.local/ns/demo/sa/client-0";
  request.destination_port = 8080;
  request.http = &http;
  int allowed = 0;
  double cpu0 = threadCpuNs(), wall0 = wallNs();
  for (int i = 0; i < kChecks; ++i) {
    allowed += rules.evaluate(request).allowed ? 1 : 0;
  }
  double cpu = (threadCpuNs() - cpu0) / kChecks, wall = (wallNs() - wall0) / kChecks;
  if (allowed != kChecks) {
    std::fprintf(stderr, "baseline: unexpected decisions\n");
  }
  std::printf("%-34s %12.1f %12.1f\n", "(baseline) L7 policy decision", cpu, wall);
}

}  // namespace

int main() {
  std::printf("%-34s %12s %12s\n", "case", "cpu ns/check", "wall ns");
  policyBaseline();
  const std::vector<Case> cases = {
      {"no policy on the pod", {}, 1, false},
      {"policy on another port",
       {[] {
         auto p = limitPolicy(kHigh, std::nullopt, false);
         p.ports = {9090};
         return p;
       }()},
       1,
       false},
      {"total", {limitPolicy(kHigh, std::nullopt, false)}, 1, false},
      {"total + identity, 1 identity", {limitPolicy(kHigh, kHigh, false)}, 1, false},
      {"total + identity, 1000 identities", {limitPolicy(kHigh, kHigh, false)}, 1000, false},
      {"total + override", {limitPolicy(kHigh, kHigh, true)}, 8, false},
      {"over the limit (429 path)",
       {limitPolicy(std::nullopt, model::RateLimit{1, 1}, false)},
       1,
       true},
  };
  for (const Case& c : cases) {
    run(c);
  }
  contended();
  return 0;
}
