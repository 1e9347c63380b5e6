// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// `ferryctl check` and the agent's authorizer answer alike on the enforcement rows
// (test/policy/enforcement_rows.h): the CLI's runCheck() over an inventory, and the agent's
// PolicyState (the connection, then the request as the L7 authorizer asks it) over the same
// pods, Service and policies as a node snapshot.
#include "agent/http/l7_authorizer.h"
#include "agent/state/policy_state.h"
#include "cli/check.h"
#include "enforcement_rows.h"

namespace ferry::agent {
namespace {

using policy::testing::EnforcementRow;

model::Workload pod(std::string ns, std::string name, std::string sa, std::string ip,
                    model::Labels labels) {
  model::Workload w;
  w.uid = ns + "-" + name;
  w.key = {std::move(ns), std::move(name)};
  w.service_account = std::move(sa);
  w.ips = {std::move(ip)};
  w.labels = std::move(labels);
  w.node = "node1";
  return w;
}

struct World {
  std::vector<model::Workload> workloads;
  std::vector<model::Service> services;
  std::vector<model::AuthorizationPolicy> policies;
};

World worldFor(const EnforcementRow& row) {
  World w;
  w.workloads = {pod("demo", "web-0", "web", "10.244.1.12", {{"app", "web"}}),
                 pod(row.peer.ns, "peer-0", row.peer.sa, "10.244.1.11", {{"app", "peer"}})};
  w.workloads[1].mesh_enabled = !row.peer.plaintext;
  model::Service svc;
  svc.key = {"demo", "web"};
  svc.selector = {{"app", "web"}};
  svc.ports.push_back(model::ServicePort{.name = row.http_port ? "http" : "tcp", .port = row.port});
  w.services = {svc};
  w.policies = policy::testing::policiesOf(row.policies);
  return w;
}

// What the destination's agent decides for the row.
bool agentAllows(const World& world, const EnforcementRow& row, std::string* reason) {
  model::NodeSnapshot snap;
  snap.node = "node1";
  snap.workloads = world.workloads;
  snap.services = world.services;
  snap.policies = world.policies;
  PolicyState state(snap);
  const model::Workload& dest = snap.workloads[0];
  ConnectionAttributes attrs;
  if (!row.peer.plaintext) {
    attrs.principal = "cluster.local/ns/" + row.peer.ns + "/sa/" + row.peer.sa;
  }
  attrs.source_ip = "10.244.1.11";
  attrs.destination_ip = "10.244.1.12";
  attrs.destination_port = row.port;
  attrs.http = isHttpPort(snap, dest, row.port);
  Decision d = state.authorize(dest, attrs);
  *reason = d.reason;
  if (!d.allowed || !attrs.http || !row.method) {
    return d.allowed;
  }
  // The request as makeL7Authorizer hands it to the engine.
  std::string principal;
  policy::Request request = connectionRequest(attrs, principal);
  policy::HttpRequest http{*row.method, "web.demo.svc.cluster.local", row.path, {}};
  request.http = &http;
  policy::Decision rd = state.evaluate(dest, request);
  *reason = rd.str();
  return rd.allowed;
}

TEST_CASE("ferryctl check and the agent's authorizer agree on every enforcement row",
          "[agent][cli][parity]") {
  auto rows = policy::testing::enforcementRows();
  REQUIRE(rows.size() >= 30);
  for (const auto& row : rows) {
    INFO(row.name);
    World world = worldFor(row);
    cli::Inventory inv{world.workloads, world.services, world.policies};
    cli::CheckArgs args;
    args.source = world.workloads[1].key;
    args.destination = world.workloads[0].key;
    args.port = row.port;
    args.plaintext = row.peer.plaintext;
    if (row.method) {
      args.method = *row.method;
      args.path = row.path;
    }
    auto report = cli::runCheck(inv, args);
    REQUIRE(report.ok());
    std::string agent_reason;
    bool agent = agentAllows(world, row, &agent_reason);
    INFO("check: " << report->summary << "\nagent: " << agent_reason);
    CHECK(report->allowed == agent);
    CHECK(report->allowed == row.allowed);
    CHECK(report->summary == agent_reason);
    CHECK(report->http_port == row.http_port);
    CHECK(report->source_principal.empty() == row.peer.plaintext);
  }
}

}  // namespace
}  // namespace ferry::agent
