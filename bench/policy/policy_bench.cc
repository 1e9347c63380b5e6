// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Nanoseconds per authorization decision with 1, 100 and 10,000 rules, and the ratio to the
// 1-rule case measured in the same run. Not a test; see README.md for how to run it.
//
// The figure is the thread's CPU time per decision (CLOCK_THREAD_CPUTIME_ID), so that other
// processes sharing the cores do not inflate it; wall time is printed beside it.
//
// The rules are realistic: each one allows a distinct SPIFFE principal, 10 rules per ALLOW
// policy, plus one DENY policy for a quarantined namespace. For L7 the rules also name methods
// and paths (and the DENY /admin*); for L4 they name ports only, since an ALLOW rule with HTTP
// fields allows nothing at L4. Three requests:
//   - last:   matches only the last rule (every rule is tried: the worst case for an allow);
//   - none:   matches no rule (every rule tried, then denied);
//   - deny:   hits the DENY policy, which is evaluated first.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "policy/engine.h"

namespace {

using namespace ferry;

std::vector<model::AuthorizationPolicy> makePolicies(int rules, bool http) {
  std::vector<model::AuthorizationPolicy> out;
  model::AuthorizationPolicy deny;
  deny.key = {"demo", "deny-quarantined"};
  deny.action = model::PolicyAction::kDeny;
  deny.selector = model::Labels{{"app", "web"}};
  model::Rule deny_rule;
  deny_rule.from.push_back(model::Source{.namespaces = {"quarantine"}});
  if (http) {
    deny_rule.to.push_back(model::Operation{.paths = {"/admin*"}});
  }
  deny.rules.push_back(std::move(deny_rule));
  out.push_back(deny);
  for (int i = 0; i < rules; ++i) {
    if (i % 10 == 0) {
      model::AuthorizationPolicy p;
      p.key = {"demo", "allow-" + std::to_string(100000 + i / 10)};
      p.action = model::PolicyAction::kAllow;
      p.selector = model::Labels{{"app", "web"}};
      out.push_back(p);
    }
    model::Rule r;
    r.from.push_back(
        model::Source{.principals = {"cluster.local/ns/demo/sa/client-" + std::to_string(i)}});
    if (http) {
      r.to.push_back(model::Operation{
          .ports = {"8080"}, .methods = {"GET", "POST"}, .paths = {"/api/v1/*", "/static/*"}});
    } else {
      r.to.push_back(model::Operation{.ports = {"8080", "8443"}});
    }
    out.back().rules.push_back(std::move(r));
  }
  return out;
}

struct Case {
  const char* name;
  std::string principal;
  const char* path;
  bool http;
};

struct Cost {
  double cpu_ns;
  double wall_ns;
};

double threadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

Cost nsPerDecision(const policy::WorkloadPolicies& view, const policy::Request& request,
                   bool expect_allowed) {
  // Warm up, then run for at least 200 ms of CPU time.
  for (int i = 0; i < 100; ++i) {
    if (view.evaluate(request).allowed != expect_allowed) {
      std::fprintf(stderr, "unexpected decision\n");
      std::exit(1);
    }
  }
  using Clock = std::chrono::steady_clock;
  uint64_t iterations = 0;
  uint64_t allowed = 0;
  auto start = Clock::now();
  double cpu_start = threadCpuNs();
  double cpu = 0;
  uint64_t batch = 16;
  while (cpu < 200e6) {
    for (uint64_t i = 0; i < batch; ++i) {
      allowed += view.evaluate(request).allowed ? 1 : 0;
    }
    iterations += batch;
    batch *= 2;
    cpu = threadCpuNs() - cpu_start;
  }
  auto wall = Clock::now() - start;
  if ((allowed == iterations) != expect_allowed) {
    std::fprintf(stderr, "unexpected decision\n");
    std::exit(1);
  }
  auto n = static_cast<double>(iterations);
  return {cpu / n, std::chrono::duration<double, std::nano>(wall).count() / n};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    const bool help = std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0;
    std::fprintf(
        help ? stdout : stderr,
        "usage: policy_bench\n"
        "CPU ns per authorization decision with 1, 100 and 10,000 rules (no arguments).\n");
    return help ? 0 : 2;
  }
  const int sizes[] = {1, 100, 10000};
  std::printf("%-8s %-6s %-5s %14s %10s %14s\n", "rules", "case", "mode", "cpu ns/dec", "x 1-rule",
              "wall ns/dec");
  std::vector<double> baseline;
  for (int n : sizes) {
    auto l7 = policy::PolicySnapshot::build(makePolicies(n, true));
    auto l4 = policy::PolicySnapshot::build(makePolicies(n, false));
    auto l7_view = l7->forWorkload("demo", model::Labels{{"app", "web"}});
    auto l4_view = l4->forWorkload("demo", model::Labels{{"app", "web"}});
    std::vector<Case> cases = {
        {"last", "spiffe://cluster.local/ns/demo/sa/client-" + std::to_string(n - 1),
         "/api/v1/items?id=7", true},
        {"none", "spiffe://cluster.local/ns/demo/sa/stranger", "/api/v1/items", true},
        {"deny", "spiffe://cluster.local/ns/quarantine/sa/client-0", "/admin/users", true},
        {"last", "spiffe://cluster.local/ns/demo/sa/client-" + std::to_string(n - 1), "", false},
        {"none", "spiffe://cluster.local/ns/demo/sa/stranger", "", false},
        {"deny", "spiffe://cluster.local/ns/quarantine/sa/client-0", "", false},
    };
    size_t index = 0;
    for (const auto& c : cases) {
      policy::HttpRequest http{"GET",
                               "web.demo.svc.cluster.local",
                               c.path,
                               {{"user-agent", "bench"}, {"accept", "*/*"}}};
      policy::Request request;
      request.source_principal = c.principal;
      request.source_ip = net::IpAddress::parse("10.244.1.11");
      request.destination_ip = net::IpAddress::parse("10.244.1.12");
      request.destination_port = 8080;
      request.http = c.http ? &http : nullptr;
      bool expect_allowed = std::string(c.name) == "last";
      Cost cost = nsPerDecision(c.http ? l7_view : l4_view, request, expect_allowed);
      if (baseline.size() <= index) {
        baseline.push_back(cost.cpu_ns);
      }
      std::printf("%-8d %-6s %-5s %14.1f %10.1f %14.1f\n", n, c.name, c.http ? "L7" : "L4",
                  cost.cpu_ns, cost.cpu_ns / baseline[index], cost.wall_ns);
      ++index;
    }
  }
  return 0;
}
