// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The engine beyond the semantics table: explanations for ferryctl check, fail-closed
// compilation, and snapshot swaps under concurrent readers.
#include <atomic>
#include <set>
#include <thread>

#include "eventually.h"
#include "policy_test_util.h"

namespace ferry::policy::testing {
namespace {

using Catch::Matchers::Contains;

const model::Labels kWebLabels{{"app", "web"}};

TEST_CASE("explain names every applicable policy, rule and the clause that failed",
          "[policy][explain]") {
  auto snapshot =
      snapshotOf(ap("deny-admin", "DENY", "[{to: [{operation: {paths: ['/admin*']}}]}]") +
                 ap("allow-client", "ALLOW",
                    "[{from: [{source: {principals: [cluster.local/ns/demo/sa/client]}}]}, "
                    "{to: [{operation: {methods: [GET]}}]}]") +
                 ap("other", "DENY", "[{}]", "{app: db}"));
  Req req{.principal = kAdmin, .method = "POST", .path = "/index.html"};
  auto built = build(req);
  Explanation e = snapshot->forWorkload("demo", kWebLabels).explain(built->request);
  CHECK(e.decision.str() == "denied: no ALLOW policy matched");
  REQUIRE(e.policies.size() == 2);  // demo/other selects db only
  CHECK(e.policies[0].policy.str() == "demo/deny-admin");
  CHECK_FALSE(e.policies[0].rules[0].matched);
  CHECK(e.policies[0].rules[0].why ==
        "to[0].operation.paths: '/index.html' matches none of ['/admin*']");
  CHECK(e.policies[1].rules[0].why ==
        "from[0].source.principals: 'spiffe://cluster.local/ns/ops/sa/admin' matches none of "
        "['cluster.local/ns/demo/sa/client']");
  CHECK(e.policies[1].rules[1].why == "to[0].operation.methods: 'POST' matches none of ['GET']");
  std::string text = e.str();
  CHECK_THAT(text, Contains("DENY demo/deny-admin"));
  CHECK_THAT(text, Contains("ALLOW demo/allow-client"));

  Req allowed{.principal = kClient, .path = "/admin/x"};
  auto built2 = build(allowed);
  Explanation e2 = snapshot->forWorkload("demo", kWebLabels).explain(built2->request);
  CHECK(e2.decision.str() == "denied by DENY policy demo/deny-admin rule 0");
  CHECK(e2.policies[0].rules[0].matched);
  CHECK(e2.policies[0].rules[0].why == "matched");
}

TEST_CASE("explain at L4 says which ALLOW rules were dropped", "[policy][explain]") {
  auto snapshot = snapshotOf(ap("p", "ALLOW", "[{to: [{operation: {paths: ['/x']}}]}]") +
                             ap("d", "DENY", "[{to: [{operation: {methods: [PUT]}}]}]"));
  auto built = build(Req{.http = false});
  Explanation e = snapshot->forWorkload("demo", kWebLabels).explain(built->request);
  CHECK(e.decision.str() == "denied by DENY policy demo/d rule 0");
  REQUIRE(e.policies.size() == 2);
  CHECK(e.policies[0].rules[0].why == "matched (HTTP-only parts dropped on a TCP port)");
  CHECK(e.policies[1].rules[0].skipped_at_l4);
  CHECK_FALSE(e.policies[1].rules[0].matched);
}

TEST_CASE("a tunnel is allowed only by an ALLOW rule naming its method", "[policy][tunnel]") {
  const std::string kNotNamed =
      "denied: a tunnel (CONNECT or a non-WebSocket upgrade) needs an ALLOW rule naming its "
      "method";
  struct Row {
    const char* name;
    std::string policies;
    bool tunnel_allowed;
    std::string tunnel_decision;
    bool get_allowed;  // the same peer's plain GET, for contrast
  };
  const std::string any_source = "[{from: [{source: {namespaces: [demo]}}]}]";
  const Row rows[] = {
      {"no policy", "", false, kNotNamed, true},
      {"ALLOW naming CONNECT", ap("a", "ALLOW", "[{to: [{operation: {methods: [CONNECT]}}]}]"),
       true, "allowed by ALLOW policy demo/a rule 0", false},
      {"ALLOW methods [*]", ap("a", "ALLOW", "[{to: [{operation: {methods: ['*']}}]}]"), false,
       kNotNamed, true},
      {"ALLOW methods [CONN*]", ap("a", "ALLOW", "[{to: [{operation: {methods: ['CONN*']}}]}]"),
       false, kNotNamed, false},
      {"ALLOW without operations", ap("a", "ALLOW", any_source), false, kNotNamed, true},
      {"ALLOW notMethods [GET]", ap("a", "ALLOW", "[{to: [{operation: {notMethods: [GET]}}]}]"),
       false, kNotNamed, false},
      {"second operation names CONNECT",
       ap("a", "ALLOW",
          "[{to: [{operation: {ports: ['8080']}}, {operation: {methods: [CONNECT]}}]}]"),
       true, "allowed by ALLOW policy demo/a rule 0", true},
      {"naming CONNECT for another host",
       ap("a", "ALLOW", "[{to: [{operation: {methods: [CONNECT], hosts: [other.example]}}]}]"),
       false, kNotNamed, false},
      {"DENY naming CONNECT wins",
       ap("d", "DENY", "[{to: [{operation: {methods: [CONNECT]}}]}]") +
           ap("a", "ALLOW", "[{to: [{operation: {methods: [CONNECT]}}]}]"),
       false, "denied by DENY policy demo/d rule 0", false},
      {"DENY on the host applies to the tunnel as to any request",
       ap("d", "DENY", "[{to: [{operation: {hosts: [tunnel.example]}}]}]"), false,
       "denied by DENY policy demo/d rule 0", false},
  };
  for (const Row& row : rows) {
    INFO(row.name);
    auto snapshot = snapshotOf(row.policies);
    WorkloadPolicies w = snapshot->forWorkload("demo", kWebLabels);
    auto tunnel = build(Req{.principal = kClient,
                            .method = "CONNECT",
                            .path = "",
                            .host = "tunnel.example:443",
                            .tunnel = true});
    Decision d = w.evaluate(tunnel->request);
    CHECK(d.allowed == row.tunnel_allowed);
    CHECK(d.str() == row.tunnel_decision);
    CHECK(w.explain(tunnel->request).decision.str() == d.str());  // the index agrees
    auto get = build(Req{.principal = kClient, .host = "tunnel.example:443"});
    CHECK(w.evaluate(get->request).allowed == row.get_allowed);
  }
}

TEST_CASE("explain says why an ALLOW rule does not open a tunnel", "[policy][explain][tunnel]") {
  auto snapshot = snapshotOf(ap("a", "ALLOW",
                                "[{to: [{operation: {methods: ['*']}}]}, "
                                "{from: [{source: {namespaces: [demo]}}]}]"));
  auto built = build(Req{.principal = kClient, .method = "CONNECT", .path = "", .tunnel = true});
  Explanation e = snapshot->forWorkload("demo", kWebLabels).explain(built->request);
  REQUIRE(e.policies.size() == 1);
  CHECK(e.policies[0].rules[0].why ==
        "to[0].operation.methods: does not name 'CONNECT', which a tunnel needs");
  CHECK(e.policies[0].rules[1].why ==
        "names no method: an ALLOW rule like this does not allow a tunnel");
}

TEST_CASE("the principal index decides exactly like a scan of every rule", "[policy][index]") {
  // Keyed rules (exact principals only) interleaved with unkeyed ones (prefix principals,
  // namespaces, no from at all), across several policies of each action, so that candidates
  // from both lists must be merged back into evaluation order.
  std::string manifests;
  const char* actions[] = {"ALLOW", "DENY", "AUDIT"};
  for (int p = 0; p < 9; ++p) {
    std::string rules = "[";
    for (int r = 0; r < 6; ++r) {
      int k = p * 6 + r;
      std::string rule;
      switch (k % 4) {
        case 0:
          rule = "{from: [{source: {principals: [cluster.local/ns/demo/sa/s" +
                 std::to_string(k % 5) + ", cluster.local/ns/demo/sa/s" +
                 std::to_string((k + 2) % 5) + "]}}], to: [{operation: {ports: ['" +
                 std::to_string(8000 + k % 3) + "']}}]}";
          break;
        case 1:
          rule = "{from: [{source: {principals: ['cluster.local/ns/demo/sa/s" +
                 std::to_string(k % 5) +
                 "']}}, {source: {principals: ['cluster.local/ns/ops/*']}}], "
                 "to: [{operation: {methods: [" +
                 (k % 2 ? "GET" : "POST") + "]}}]}";
          break;
        case 2:
          rule = "{from: [{source: {namespaces: [ops]}}], to: [{operation: {paths: ['/p" +
                 std::to_string(k % 3) + "*']}}]}";
          break;
        default:
          rule = "{to: [{operation: {ports: ['" + std::to_string(8000 + k % 3) + "'], paths: ['/p" +
                 std::to_string(k % 2) + "*']}}]}";
          break;
      }
      rules += (r ? ", " : "") + rule;
    }
    manifests += ap("p" + std::to_string(p), actions[p % 3], rules + "]");
  }
  auto snapshot = snapshotOf(manifests);
  auto view = snapshot->forWorkload("demo", kWebLabels);
  int compared = 0;
  std::set<std::string> outcomes;
  for (const char* principal :
       {"spiffe://cluster.local/ns/demo/sa/s0", "spiffe://cluster.local/ns/demo/sa/s1",
        "spiffe://cluster.local/ns/demo/sa/s3", "spiffe://cluster.local/ns/ops/sa/a", ""}) {
    for (uint16_t port : {8000, 8001, 8002}) {
      for (const char* method : {"GET", "POST"}) {
        for (const char* path : {"/p0x", "/p1", "/p2/y", "/q"}) {
          for (bool http : {true, false}) {
            Req req{
                .principal = principal, .port = port, .http = http, .method = method, .path = path};
            auto built = build(req);
            std::string indexed = view.evaluate(built->request).str();
            CHECK(indexed == view.explain(built->request).decision.str());
            outcomes.insert(indexed);
            ++compared;
          }
        }
      }
    }
  }
  CHECK(compared == 240);
  CHECK(outcomes.size() >= 6);  // the table exercises many different decisions
}

TEST_CASE("a policy that does not compile fails closed and is reported", "[policy][snapshot]") {
  model::AuthorizationPolicy bad_deny;
  bad_deny.key = {"demo", "bad-deny"};
  bad_deny.action = model::PolicyAction::kDeny;
  bad_deny.rules.push_back(model::Rule{{model::Source{.ip_blocks = {"not-an-ip"}}}, {}, {}});
  model::AuthorizationPolicy bad_allow;
  bad_allow.key = {"demo", "bad-allow"};
  bad_allow.action = model::PolicyAction::kAllow;
  bad_allow.rules.push_back(model::Rule{{}, {model::Operation{.ports = {"http"}}}, {}});
  model::AuthorizationPolicy bad_audit = bad_allow;
  bad_audit.key = {"demo", "bad-audit"};
  bad_audit.action = model::PolicyAction::kAudit;

  auto built = build(Req{});
  {
    auto s = PolicySnapshot::build({bad_deny});
    REQUIRE(s->errors().size() == 1);
    CHECK(s->errors()[0] ==
          "AuthorizationPolicy demo/bad-deny: rules[0].from[0].source.ipBlocks[0]: 'not-an-ip' "
          "is not an IP address or CIDR");
    CHECK(s->forWorkload("demo", kWebLabels).evaluate(built->request).str() ==
          "denied: AuthorizationPolicy demo/bad-deny was refused and fails closed until it is "
          "fixed (rules[0].from[0].source.ipBlocks[0]: 'not-an-ip' is not an IP address or "
          "CIDR)");
    CHECK(s->forWorkload("other", kWebLabels).evaluate(built->request).allowed);
  }
  {
    auto s = PolicySnapshot::build({bad_allow});
    REQUIRE(s->errors().size() == 1);
    CHECK_THAT(s->errors()[0], Contains("rules[0].to[0].operation.ports[0]: 'http' is not a port"));
    // Deny-all, like a policy the controller refused: an ALLOW that cannot be applied never
    // leaves the workload open, nor allows through another ALLOW policy.
    CHECK(s->forWorkload("demo", kWebLabels).evaluate(built->request).str() ==
          "denied: AuthorizationPolicy demo/bad-allow was refused and fails closed until it is "
          "fixed (rules[0].to[0].operation.ports[0]: 'http' is not a port number (1 to 65535))");
  }
  {
    auto s = PolicySnapshot::build({bad_audit});
    CHECK(s->errors().size() == 1);
    CHECK(s->size() == 0);
    CHECK(s->forWorkload("demo", kWebLabels).evaluate(built->request).str() ==
          "allowed: no ALLOW policy applies");
  }
}

TEST_CASE("a workload view keeps its snapshot alive across a store update", "[policy][store]") {
  PolicyStore store;
  store.update(snapshotOf(ap("deny-all", "DENY", "[{}]")));
  WorkloadPolicies view = store.current()->forWorkload("demo", kWebLabels);
  store.update(snapshotOf(""));
  auto built = build(Req{});
  Decision old_decision = view.evaluate(built->request);
  CHECK(old_decision.str() == "denied by DENY policy demo/deny-all rule 0");
  CHECK(store.current()->forWorkload("demo", kWebLabels).evaluate(built->request).allowed);
}

TEST_CASE("readers see either the old or the new snapshot while it is swapped", "[policy][store]") {
  PolicyStore store;
  auto deny = snapshotOf(ap("deny-all", "DENY", "[{}]"));
  auto allow = snapshotOf(ap("allow-all", "ALLOW", "[{}]"));
  store.update(deny);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<int> seen_allow{0}, seen_deny{0};
  auto built = build(Req{});
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        Decision d = store.current()->forWorkload("demo", kWebLabels).evaluate(built->request);
        std::string s = d.str();
        if (s == "denied by DENY policy demo/deny-all rule 0") {
          ++seen_deny;
        } else if (s == "allowed by ALLOW policy demo/allow-all rule 0") {
          ++seen_allow;
        } else {
          ++bad;
        }
      }
    });
  }
  for (int i = 0; i < 2000; ++i) {
    store.update(i % 2 == 0 ? allow : deny);
  }
  store.update(allow);
  // Bounded: readers stop once one has evaluated against an allowing snapshot.
  CHECK(ferry::testing::eventually([&] { return seen_allow.load() > 0; }, std::chrono::seconds(10),
                                   "a reader to see the allowing snapshot"));
  stop = true;
  for (auto& r : readers) {
    r.join();
  }
  CHECK(bad.load() == 0);
  CHECK(seen_allow.load() > 0);
  CHECK(store.current()->forWorkload("demo", kWebLabels).evaluate(built->request).allowed);
}

}  // namespace
}  // namespace ferry::policy::testing
