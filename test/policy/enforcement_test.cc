// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The enforcement rows (enforcement_rows.h) through the engine, decided as the agent decides:
// the connection, then the request.
#include "enforcement_rows.h"

namespace ferry::policy::testing {
namespace {

// The connection decision, then (when admitted and the row has one) the request decision.
Decision decide(const WorkloadPolicies& policies, const EnforcementRow& row) {
  std::string principal = row.peer.principal();
  Request request;
  request.source_principal = principal;
  request.source_ip = net::IpAddress::parse("10.244.1.11");
  request.destination_ip = net::IpAddress::parse("10.244.1.12");
  request.destination_port = row.port;
  request.http_port = row.http_port;
  Decision d = policies.evaluate(request);
  if (!d.allowed || !row.http_port || !row.method) {
    return d;
  }
  HttpRequest http{*row.method, "web.demo.svc.cluster.local", row.path, {}};
  request.http = &http;
  return policies.evaluate(request);
}

TEST_CASE(
    "enforcement rows: plaintext, HTTP-only fields on TCP ports, source {}, "
    "serviceAccounts, dry-run, refused policies",
    "[policy][enforcement]") {
  auto rows = enforcementRows();
  REQUIRE(rows.size() >= 30);
  for (const auto& row : rows) {
    SECTION(row.name) {
      auto snapshot = PolicySnapshot::build(policiesOf(row.policies));
      auto policies = snapshot->forWorkload("demo", model::Labels{{"app", "web"}});
      Decision d = decide(policies, row);
      CHECK(d.str() == row.expect);
      CHECK(d.allowed == row.allowed);
    }
  }
}

TEST_CASE("a refused policy is in force as a stand-in and listed", "[policy][enforcement]") {
  auto policies =
      policiesOf(withAction(ap("bad", "ALLOW", "[{}]"), "CUSTOM") +
                 ap("audit-bad", "AUDIT", "[{from: [{source: {ipBlocks: [nowhere]}}]}]"));
  // The refused AUDIT policy has no stand-in: it never changed a decision.
  REQUIRE(policies.size() == 1);
  CHECK(policies[0].action == model::PolicyAction::kDeny);
  CHECK(policies[0].refused.find("CUSTOM is not supported") != std::string::npos);
  auto snapshot = PolicySnapshot::build(policies);
  REQUIRE(snapshot->refused().size() == 1);
  CHECK(snapshot->refused()[0].starts_with("demo/bad: "));
}

TEST_CASE("a policy that does not compile fails closed like a refused one",
          "[policy][enforcement]") {
  model::AuthorizationPolicy p;
  p.key = {"demo", "broken"};
  p.action = model::PolicyAction::kAllow;
  p.selector = model::Labels{{"app", "web"}};
  p.rules.emplace_back();
  p.rules[0].from.push_back(model::Source{.service_accounts = {"no-slash"}});
  model::AuthorizationPolicy allow_all;
  allow_all.key = {"demo", "allow-all"};
  allow_all.rules.emplace_back();
  auto snapshot = PolicySnapshot::build({p, allow_all});
  REQUIRE(snapshot->errors().size() == 1);
  CHECK(snapshot->errors()[0].find("serviceAccounts[0]") != std::string::npos);
  auto d = snapshot->forWorkload("demo", model::Labels{{"app", "web"}}).evaluate(Request{});
  CHECK_FALSE(d.allowed);
  CHECK(d.str().starts_with("denied: AuthorizationPolicy demo/broken was refused"));
}

TEST_CASE("serviceAccounts values are <namespace>/<name>", "[policy][enforcement]") {
  CHECK(checkServiceAccount("demo/client").ok());
  CHECK(checkServiceAccount("demo/client.v2").ok());
  for (const char* bad : {"client", "demo/", "/client", "demo/*", "*/client", "Demo/client",
                          "demo/client/x", "demo/cli ent"}) {
    INFO(bad);
    CHECK_FALSE(checkServiceAccount(bad).ok());
  }
}

TEST_CASE("dry-run policies never change the enforced decision", "[policy][enforcement]") {
  // Every row's enforced decision is the same with a dry-run DENY-all added.
  for (const auto& row : enforcementRows()) {
    INFO(row.name);
    auto with =
        PolicySnapshot::build(policiesOf(row.policies + dryRun("shadow-deny-all", "DENY", "[{}]")));
    auto policies = with->forWorkload("demo", model::Labels{{"app", "web"}});
    Decision d = decide(policies, row);
    CHECK(d.allowed == row.allowed);
    REQUIRE(d.dry_run.has_value());
    CHECK_FALSE(d.dry_run->allowed);
  }
}

}  // namespace
}  // namespace ferry::policy::testing
