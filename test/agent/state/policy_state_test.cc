// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/state/policy_state.h"

#include <catch2/catch.hpp>

namespace ferry::agent {
namespace {

using model::PolicyAction;

model::Workload dest() {
  model::Workload w;
  w.uid = "d";
  w.key = {"prod", "db-0"};
  w.labels = {{"app", "db"}};
  return w;
}

model::AuthorizationPolicy policy(std::string name, PolicyAction action, model::Rule rule,
                                  std::optional<model::Labels> selector = model::Labels{
                                      {"app", "db"}}) {
  model::AuthorizationPolicy p;
  p.key = {"prod", std::move(name)};
  p.action = action;
  p.selector = std::move(selector);
  p.rules.push_back(std::move(rule));
  return p;
}

model::Rule fromPrincipal(std::string principal) {
  model::Rule r;
  model::Source s;
  s.principals = {std::move(principal)};
  r.from.push_back(s);
  return r;
}

ConnectionAttributes attrs(std::string principal, std::string ns, uint16_t port) {
  ConnectionAttributes a;
  a.principal = std::move(principal);
  a.source_namespace = std::move(ns);
  a.source_ip = "10.244.1.11";
  a.destination_ip = "10.244.2.11";
  a.destination_port = port;
  return a;
}

ConnectionAttributes httpAttrs(std::string principal, std::string ns, uint16_t port) {
  ConnectionAttributes a = attrs(std::move(principal), std::move(ns), port);
  a.http = true;
  return a;
}

TEST_CASE("L4 authorization follows Istio's order", "[agent]") {
  const std::string web = "cluster.local/ns/prod/sa/web";
  const std::string evil = "cluster.local/ns/other/sa/evil";
  model::Rule only_port_5432;
  only_port_5432.to.push_back(model::Operation{});
  only_port_5432.to[0].ports = {"5432"};
  model::Rule get_only;
  get_only.to.push_back(model::Operation{});
  get_only.to[0].methods = {"GET"};
  model::Rule ns_other;
  ns_other.from.push_back(model::Source{});
  ns_other.from[0].namespaces = {"other"};
  model::Rule wildcard = fromPrincipal("cluster.local/ns/prod/*");
  model::Rule web_get = fromPrincipal(web);
  web_get.to = get_only.to;

  struct Row {
    const char* description;
    std::vector<model::AuthorizationPolicy> policies;
    ConnectionAttributes a;
    bool allowed;
  };
  std::vector<Row> rows = {
      {"no policy allows", {}, attrs(web, "prod", 5432), true},
      {"matching ALLOW allows",
       {policy("a", PolicyAction::kAllow, fromPrincipal(web))},
       attrs(web, "prod", 5432),
       true},
      {"non-matching ALLOW denies",
       {policy("a", PolicyAction::kAllow, fromPrincipal(web))},
       attrs(evil, "other", 5432),
       false},
      {"plaintext has no principal",
       {policy("a", PolicyAction::kAllow, fromPrincipal(web))},
       attrs("", "", 5432),
       false},
      {"DENY wins over ALLOW",
       {policy("a", PolicyAction::kAllow, fromPrincipal(web)),
        policy("d", PolicyAction::kDeny, fromPrincipal(web))},
       attrs(web, "prod", 5432),
       false},
      {"DENY by namespace",
       {policy("d", PolicyAction::kDeny, ns_other)},
       attrs(evil, "other", 1),
       false},
      {"DENY by namespace leaves others",
       {policy("d", PolicyAction::kDeny, ns_other)},
       attrs(web, "prod", 1),
       true},
      {"port rule",
       {policy("a", PolicyAction::kAllow, only_port_5432)},
       attrs(web, "prod", 80),
       false},
      {"port rule match",
       {policy("a", PolicyAction::kAllow, only_port_5432)},
       attrs(web, "prod", 5432),
       true},
      {"L7 rule in ALLOW never matches at L4",
       {policy("a", PolicyAction::kAllow, get_only)},
       attrs(web, "prod", 80),
       false},
      {"L7 rule in DENY matches at L4 (fail closed)",
       {policy("d", PolicyAction::kDeny, get_only)},
       attrs(web, "prod", 80),
       false},
      {"prefix wildcard principal",
       {policy("a", PolicyAction::kAllow, wildcard)},
       attrs(web, "prod", 80),
       true},
      {"policy for other labels does not apply",
       {policy("a", PolicyAction::kAllow, fromPrincipal(web), model::Labels{{"app", "x"}})},
       attrs(evil, "other", 80),
       true},
      {"HTTP port: an L7 ALLOW rule leaves the connection to per-request checks",
       {policy("a", PolicyAction::kAllow, get_only)},
       httpAttrs(web, "prod", 80),
       true},
      {"HTTP port: an L7 DENY rule leaves the connection to per-request checks",
       {policy("d", PolicyAction::kDeny, get_only)},
       httpAttrs(web, "prod", 80),
       true},
      {"HTTP port: a DENY decidable at L4 still refuses",
       {policy("d", PolicyAction::kDeny, fromPrincipal(web))},
       httpAttrs(web, "prod", 80),
       false},
      {"HTTP port: an ALLOW rule whose L4 part fails does not admit",
       {policy("a", PolicyAction::kAllow, web_get)},
       httpAttrs(evil, "other", 80),
       false},
      {"HTTP port: an ALLOW rule whose L4 part matches admits",
       {policy("a", PolicyAction::kAllow, web_get)},
       httpAttrs(web, "prod", 80),
       true},
      {"AUDIT does not decide",
       {policy("x", PolicyAction::kAudit, fromPrincipal(web))},
       attrs(evil, "other", 80),
       true},
  };
  for (const Row& row : rows) {
    INFO(row.description);
    model::NodeSnapshot snap;
    snap.policies = row.policies;
    snap.workloads.push_back(dest());
    PolicyState state(snap);
    Decision d = state.authorize(dest(), row.a);
    CHECK(d.allowed == row.allowed);
    CHECK_FALSE(d.reason.empty());
    // A pod the state does not know yet is decided by its namespace and labels alike.
    model::Workload unknown = dest();
    unknown.uid = "not-in-the-snapshot";
    CHECK(state.authorize(unknown, row.a).allowed == row.allowed);
  }
}

TEST_CASE("connection decisions: the plaintext bypass and HTTP-only DENY fields", "[agent]") {
  model::Rule any_principal = fromPrincipal("*");
  model::Rule any_namespace;
  any_namespace.from.push_back(model::Source{.namespaces = {"*"}});
  model::Rule delete_from_evil = fromPrincipal("cluster.local/ns/other/sa/evil");
  delete_from_evil.to.push_back(model::Operation{.methods = {"DELETE"}});
  const std::string web = "cluster.local/ns/prod/sa/web";
  const std::string evil = "cluster.local/ns/other/sa/evil";
  struct Row {
    const char* description;
    model::AuthorizationPolicy policy;
    ConnectionAttributes a;
    bool allowed;
  };
  std::vector<Row> rows = {
      {"ALLOW principals * refuses plaintext", policy("a", PolicyAction::kAllow, any_principal),
       attrs("", "", 5432), false},
      {"ALLOW principals * admits mTLS", policy("a", PolicyAction::kAllow, any_principal),
       attrs(web, "prod", 5432), true},
      {"ALLOW namespaces * refuses plaintext", policy("a", PolicyAction::kAllow, any_namespace),
       attrs("", "", 5432), false},
      {"DENY DELETE from evil admits web on a TCP port",
       policy("d", PolicyAction::kDeny, delete_from_evil), attrs(web, "prod", 5432), true},
      {"DENY DELETE from evil denies evil on a TCP port",
       policy("d", PolicyAction::kDeny, delete_from_evil), attrs(evil, "other", 5432), false},
  };
  for (const Row& row : rows) {
    INFO(row.description);
    model::NodeSnapshot snap;
    snap.policies = {row.policy};
    snap.workloads.push_back(dest());
    CHECK(PolicyState(snap).authorize(dest(), row.a).allowed == row.allowed);
  }
}

TEST_CASE("dry-run decisions are counted, not enforced", "[agent]") {
  model::AuthorizationPolicy deny_all = policy("shadow", PolicyAction::kDeny, model::Rule{});
  deny_all.dry_run = true;
  model::NodeSnapshot snap;
  snap.policies = {deny_all};
  snap.workloads.push_back(dest());
  PolicyState state(snap);
  Stats stats;
  Decision d = state.authorize(dest(), attrs("", "", 5432), &stats);
  CHECK(d.allowed);
  CHECK(stats.policy_dry_run_denied.load() == 1);
  CHECK(stats.policy_dry_run_allowed.load() == 0);
}

TEST_CASE("refused policies in force are listed and fail closed", "[agent]") {
  model::AuthorizationPolicy allow_web = policy("a", PolicyAction::kAllow, fromPrincipal("*"));
  auto stand_in = policy::refusedStandIn(allow_web, "spec.action: bad");
  REQUIRE(stand_in.has_value());
  model::NodeSnapshot snap;
  snap.policies = {*stand_in};
  snap.workloads.push_back(dest());
  PolicyState state(snap);
  REQUIRE(state.failingClosed().size() == 1);
  CHECK(state.failingClosed()[0] == "prod/a: spec.action: bad");
  Decision d = state.authorize(dest(), attrs("cluster.local/ns/prod/sa/web", "prod", 5432));
  CHECK_FALSE(d.allowed);
  CHECK(d.policy == "prod/a");
}

TEST_CASE("mTLS mode: workload over namespace over root, PERMISSIVE by default", "[agent]") {
  model::NodeSnapshot snap;
  CHECK(mtlsModeFor(snap, dest(), 80) == model::MtlsMode::kPermissive);
  model::PeerAuthentication root;
  root.key = {"ferry-system", "default"};
  root.mode = model::MtlsMode::kStrict;
  snap.peer_authentications.push_back(root);
  CHECK(mtlsModeFor(snap, dest(), 80) == model::MtlsMode::kStrict);
  model::PeerAuthentication ns;
  ns.key = {"prod", "default"};
  ns.mode = model::MtlsMode::kPermissive;
  snap.peer_authentications.push_back(ns);
  CHECK(mtlsModeFor(snap, dest(), 80) == model::MtlsMode::kPermissive);
  model::PeerAuthentication wl;
  wl.key = {"prod", "db"};
  wl.selector = model::Labels{{"app", "db"}};
  wl.mode = model::MtlsMode::kStrict;
  wl.port_modes[9090] = model::MtlsMode::kPermissive;
  snap.peer_authentications.push_back(wl);
  CHECK(mtlsModeFor(snap, dest(), 80) == model::MtlsMode::kStrict);
  CHECK(mtlsModeFor(snap, dest(), 9090) == model::MtlsMode::kPermissive);
}

}  // namespace
}  // namespace ferry::agent
