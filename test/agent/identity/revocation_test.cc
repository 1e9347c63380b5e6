// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/identity/revocation.h"

#include <functional>

#include <catch2/catch.hpp>

namespace ferry::agent {
namespace {

model::NodeSnapshot stateWith(std::vector<model::AuthorizationPolicy> policies) {
  model::NodeSnapshot snap;
  snap.version = policies.size() + 1;
  model::Workload w;
  w.uid = "db";
  w.key = {"prod", "db-0"};
  w.labels = {{"app", "db"}};
  snap.workloads.push_back(w);
  snap.policies = std::move(policies);
  return snap;
}

// What a worker gives its registry, with a loop that never runs: recheck() is called directly.
// No agent or worker context is needed.
struct Worker {
  WorkloadStateHolder workloads;
  EventLoop loop;
  Stats stats;
  Revocations revocations{loop, workloads, stats};
  Worker() { workloads.set(std::make_shared<const WorkloadState>(stateWith({}))); }
  void apply(std::vector<model::AuthorizationPolicy> policies) {
    workloads.set(std::make_shared<const WorkloadState>(stateWith(std::move(policies))));
  }
};

TEST_CASE("revocation counts and closes only connections still open", "[agent][revocation]") {
  Worker worker;
  Revocations& revocations = worker.revocations;
  const model::Workload db = worker.workloads.current()->snapshot().workloads[0];
  ConnectionAttributes attrs;
  attrs.principal = "cluster.local/ns/prod/sa/web";
  attrs.destination_port = 5432;
  // Vary how many of the denied entries are still open, including none and all.
  for (int open : {0, 1, 3}) {
    for (int finished : {0, 2}) {
      INFO(open << " open, " << finished << " finished");
      int closed_open = 0;
      int closed_finished = 0;
      for (int i = 0; i < open; ++i) {
        revocations.add(db, attrs, [&] {
          ++closed_open;
          return true;
        });
      }
      for (int i = 0; i < finished; ++i) {
        // An HBONE stream whose bridge already ended: its entry lingers until the next sweep.
        revocations.add(db, attrs, [&] {
          ++closed_finished;
          return false;
        });
      }
      const int64_t before = worker.stats.policy_revoked.load();
      model::AuthorizationPolicy deny_all;
      deny_all.key = {"prod", "deny-all"};
      deny_all.action = model::PolicyAction::kDeny;
      deny_all.rules.emplace_back();
      worker.apply({deny_all});
      revocations.recheck();
      CHECK(closed_open == open);
      CHECK(closed_finished == finished);
      CHECK(worker.stats.policy_revoked.load() - before == open);
      CHECK(revocations.size() == 0);
      // Back to an open state for the next round.
      worker.apply({});
      revocations.recheck();
    }
  }
}

TEST_CASE("revocation leaves connections the new policy still allows", "[agent][revocation]") {
  Worker worker;
  Revocations& revocations = worker.revocations;
  const model::Workload db = worker.workloads.current()->snapshot().workloads[0];
  ConnectionAttributes web;
  web.principal = "cluster.local/ns/prod/sa/web";
  web.destination_port = 5432;
  ConnectionAttributes plaintext = web;
  plaintext.principal.clear();
  int closed = 0;
  revocations.add(db, web, [&] {
    ++closed;
    return true;
  });
  revocations.add(db, plaintext, [&] {
    ++closed;
    return true;
  });
  // ALLOW principals ["*"]: the plaintext connection loses, the mTLS one stays.
  model::AuthorizationPolicy any_peer;
  any_peer.key = {"prod", "any-peer"};
  any_peer.rules.emplace_back();
  any_peer.rules[0].from.push_back(model::Source{.principals = {"*"}});
  worker.apply({any_peer});
  revocations.recheck();
  CHECK(closed == 1);
  CHECK(worker.stats.policy_revoked.load() == 1);
  CHECK(revocations.size() == 1);
}

// A DENY policy with one rule that matches everything until the caller narrows it.
model::AuthorizationPolicy denyOneRule() {
  model::AuthorizationPolicy p;
  p.key = {"prod", "deny"};
  p.action = model::PolicyAction::kDeny;
  p.rules.emplace_back();
  return p;
}

TEST_CASE("revocation entries with the same subject share it and are still judged each",
          "[agent][revocation]") {
  Worker worker;
  Revocations& revocations = worker.revocations;
  const model::Workload db = worker.workloads.current()->snapshot().workloads[0];
  ConnectionAttributes web;
  web.principal = "cluster.local/ns/prod/sa/web";
  web.source_ip = "10.244.1.11";
  web.destination_port = 5432;
  // One field apart each: the port, the source address, the principal.
  ConnectionAttributes other_port = web;
  other_port.destination_port = 5433;
  ConnectionAttributes other_source = web;
  other_source.source_ip = "10.244.1.12";
  ConnectionAttributes other_peer = web;
  other_peer.principal = "cluster.local/ns/prod/sa/batch";
  int closed_web = 0;
  int closed_other = 0;
  for (int i = 0; i < 100; ++i) {
    revocations.add(db, web, [&] {
      ++closed_web;
      return true;
    });
  }
  CHECK(revocations.sharedSubjects() == 1);
  for (const ConnectionAttributes& a : {other_port, other_source, other_peer}) {
    revocations.add(db, a, [&] {
      ++closed_other;
      return true;
    });
  }
  CHECK(revocations.sharedSubjects() == 4);
  // Each policy change in turn, and what it leaves.
  struct Step {
    const char* what;
    std::function<void(model::Rule&)> narrow;
    int closed_web, closed_other, entries, subjects;
  };
  const Step steps[] = {
      {"DENY from the batch principal: only its one connection goes",
       [](model::Rule& r) {
         r.from.push_back(model::Source{.principals = {"cluster.local/ns/prod/sa/batch"}});
       },
       0, 1, 102, 3},
      {"DENY on port 5432: the hundred sharing one subject go together, with the one from the "
       "other source address; the one on port 5433 stays",
       [](model::Rule& r) { r.to.push_back(model::Operation{.ports = {"5432"}}); }, 100, 2, 1, 1},
  };
  for (const Step& step : steps) {
    INFO(step.what);
    model::AuthorizationPolicy deny = denyOneRule();
    step.narrow(deny.rules[0]);
    worker.apply({deny});
    revocations.recheck();
    CHECK(closed_web == step.closed_web);
    CHECK(closed_other == step.closed_other);
    CHECK(revocations.size() == static_cast<size_t>(step.entries));
    CHECK(revocations.sharedSubjects() == static_cast<size_t>(step.subjects));
  }
}

}  // namespace
}  // namespace ferry::agent
