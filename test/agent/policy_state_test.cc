// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/policy_state.h"

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
  L4Authorizer authz;
  for (const Row& row : rows) {
    INFO(row.description);
    model::NodeSnapshot snap;
    snap.policies = row.policies;
    Decision d = authz.authorize(snap, dest(), row.a);
    CHECK(d.allowed == row.allowed);
    CHECK_FALSE(d.reason.empty());
  }
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

TEST_CASE("Istio string matching", "[agent]") {
  CHECK(istioMatch("*", "anything"));
  CHECK(istioMatch("abc*", "abcdef"));
  CHECK_FALSE(istioMatch("abc*", "ab"));
  CHECK(istioMatch("*def", "abcdef"));
  CHECK_FALSE(istioMatch("*def", "de"));
  CHECK(istioMatch("x", "x"));
  CHECK_FALSE(istioMatch("x", "xy"));
}

}  // namespace
}  // namespace ferry::agent
