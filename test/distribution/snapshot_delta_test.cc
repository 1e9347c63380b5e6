// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "distribution/snapshot_delta.h"

#include <catch2/catch.hpp>
#include <random>

#include "distribution/model_json.h"

namespace ferry::distribution {
namespace {

model::Workload pod(const std::string& uid, const std::string& name, const std::string& node) {
  model::Workload w;
  w.uid = uid;
  w.key = {"default", name};
  w.node = node;
  w.ips = {"10.244.1.11"};
  w.labels = {{"app", name}};
  return w;
}

model::NodeSnapshot baseSnapshot() {
  model::NodeSnapshot s;
  s.version = 7;
  s.node = "node1";
  s.trust_bundle_pem = "ROOT-A";
  s.workloads = {pod("u1", "a", "node1"), pod("u2", "b", "node1")};
  model::Service svc;
  svc.key = {"default", "web"};
  svc.vips = {"10.96.0.10"};
  svc.ports = {{"http", 80, 8080, "", "TCP", "http"}};
  svc.annotations["ferry.dev/max-connections"] = "8";
  s.services = {svc};
  model::AuthorizationPolicy p;
  p.key = {"default", "deny-b"};
  p.action = model::PolicyAction::kDeny;
  p.selector = model::Labels{{"app", "b"}};
  model::Rule rule;
  rule.from.push_back(model::Source{});
  rule.from[0].principals = {"spiffe://cluster.local/ns/default/sa/x"};
  rule.from[0].service_accounts = {"default/a"};
  rule.from[0].not_service_accounts = {"default/b"};
  p.rules = {rule};
  p.dry_run = true;
  model::AuthorizationPolicy stand_in;
  stand_in.key = {"default", "refused"};
  stand_in.action = model::PolicyAction::kDeny;
  stand_in.rules.emplace_back();
  stand_in.refused = "spec.action: 'MAYBE' is not ALLOW, DENY or AUDIT";
  s.policies = {p, stand_in};
  model::HttpRoute route;
  route.key = {"default", "web-route"};
  route.parent_services = {{"default", "web"}};
  model::HttpRouteRule rr;
  rr.request_timeout_ms = 500;
  rr.mirror_numerator = 1;
  rr.mirror_denominator = 3;
  model::HttpRouteMatch match;
  match.path = model::HttpPathMatch{model::HttpPathMatch::Type::kExact, "/x"};
  rr.matches.push_back(match);
  rr.backends = {model::BackendRef{{"default", "web"}, 80, 90},
                 model::BackendRef{{"default", "web-v2"}, 80, 10}};
  rr.response_header_modifier = model::HttpHeaderModifier{{{"x-set", "1"}}, {}, {"x-drop"}};
  rr.rewrite = model::HttpUrlRewrite{
      "v2.web", model::HttpPathModifier{model::HttpPathModifier::Type::kReplacePrefixMatch, "/v2"}};
  rr.backends[1].filters.request_header_modifier =
      model::HttpHeaderModifier{{}, {{"x-b", "2"}}, {}};
  model::HttpRouteRule redirect_rule;
  redirect_rule.redirect = model::HttpRequestRedirect{
      "https", "example.org",
      model::HttpPathModifier{model::HttpPathModifier::Type::kReplaceFullPath, "/new"}, 8443, 308};
  route.rules = {rr, redirect_rule};
  route.annotations["fault.ferry.dev/abort-status"] = "503";
  s.routes = {route};
  model::RateLimitPolicy limit;
  limit.key = {"default", "web-limits"};
  limit.target_service = "web";
  limit.service_port = 80;
  limit.total = model::RateLimit{100, 150};
  limit.overrides = {{model::RateLimit{5, 1}, {{"jobs", "batch"}}}};
  model::RateLimitPolicy refused_limit;
  refused_limit.key = {"default", "refused-limits"};
  refused_limit.selector = model::Labels{};
  refused_limit.ports = {9000};
  refused_limit.total = model::RateLimit{0, 0};
  refused_limit.refused = "spec.total.requestsPerSecond: 0 is below 1";
  s.rate_limits = {limit, refused_limit};
  return s;
}

TEST_CASE("model JSON round-trips every resource kind, optionals included", "[distribution]") {
  model::NodeSnapshot s = baseSnapshot();
  IndexedSnapshot indexed = indexSnapshot(s);
  auto back = materialize(indexed);
  REQUIRE(back.ok());
  REQUIRE(back->workloads.size() == 2);
  CHECK(back->workloads[0].labels.at("app") == "a");
  REQUIRE(back->policies.size() == 2);
  CHECK(back->policies[0].action == model::PolicyAction::kDeny);
  REQUIRE(back->policies[0].selector.has_value());
  CHECK(back->policies[0].selector->at("app") == "b");
  CHECK(back->policies[0].dry_run);
  CHECK(back->policies[0].rules[0].from[0].service_accounts ==
        std::vector<std::string>{"default/a"});
  CHECK(back->policies[0].rules[0].from[0].not_service_accounts ==
        std::vector<std::string>{"default/b"});
  CHECK(back->policies[0].refused.empty());
  CHECK_FALSE(back->policies[1].dry_run);
  CHECK(back->policies[1].refused == "spec.action: 'MAYBE' is not ALLOW, DENY or AUDIT");
  REQUIRE(back->routes.size() == 1);
  CHECK(back->routes[0].rules[0].request_timeout_ms == 500u);
  CHECK_FALSE(back->routes[0].rules[0].retry.has_value());
  CHECK(back->routes[0].rules[0].matches[0].path->type == model::HttpPathMatch::Type::kExact);
  CHECK(back->routes[0].rules[0].backends[1].weight == 10u);
  CHECK(back->routes[0].rules[0].mirror_numerator == 1u);
  CHECK(back->routes[0].rules[0].mirror_denominator == 3u);
  // Gateway API filters (issue 22 point 2): rule-level, per-backend, and a redirect rule.
  const model::HttpRouteRule& r0 = back->routes[0].rules[0];
  REQUIRE(r0.response_header_modifier.has_value());
  CHECK(r0.response_header_modifier->remove == std::vector<std::string>{"x-drop"});
  REQUIRE(r0.rewrite.has_value());
  CHECK(r0.rewrite->hostname == "v2.web");
  CHECK(r0.rewrite->path->type == model::HttpPathModifier::Type::kReplacePrefixMatch);
  CHECK(r0.rewrite->path->value == "/v2");
  CHECK_FALSE(r0.redirect.has_value());
  CHECK(r0.backends[0].filters.empty());
  REQUIRE(r0.backends[1].filters.request_header_modifier.has_value());
  CHECK(r0.backends[1].filters.request_header_modifier->add[0].second == "2");
  REQUIRE(back->routes[0].rules.size() == 2);
  const auto& redirect = back->routes[0].rules[1].redirect;
  REQUIRE(redirect.has_value());
  CHECK(redirect->scheme == "https");
  CHECK(redirect->hostname == "example.org");
  CHECK(redirect->path->type == model::HttpPathModifier::Type::kReplaceFullPath);
  CHECK(redirect->port == 8443);
  CHECK(redirect->status_code == 308);
  CHECK(back->routes[0].annotations.at("fault.ferry.dev/abort-status") == "503");
  CHECK(back->services[0].annotations.at("ferry.dev/max-connections") == "8");
  REQUIRE(back->rate_limits.size() == 2);  // keyed by namespace/name: sorted
  CHECK(back->rate_limits[0] == s.rate_limits[1]);
  CHECK(back->rate_limits[1] == s.rate_limits[0]);
  CHECK_FALSE(back->rate_limits[1].identity.has_value());
  CHECK(back->rate_limits[0].selector == model::Labels{});
  CHECK(indexSnapshot(*back) == indexed);
}

TEST_CASE("a delta carries exactly what changed and applies to the same state", "[distribution]") {
  model::NodeSnapshot before = baseSnapshot();
  model::NodeSnapshot after = before;
  after.version = 9;
  after.workloads[1].labels["app"] = "b2";             // update
  after.workloads.push_back(pod("u3", "c", "node1"));  // add
  after.policies.erase(after.policies.begin());        // delete
  after.trust_bundle_pem = "ROOT-A\nROOT-B";           // rotation

  IndexedSnapshot from = indexSnapshot(before);
  IndexedSnapshot to = indexSnapshot(after);
  v1::WatchResponse delta = deltaResponse(from, to, "e1");
  CHECK_FALSE(delta.full());
  CHECK(delta.base_version() == 7);
  CHECK(delta.version() == 9);
  REQUIRE(delta.upserts_size() == 2);
  CHECK(delta.upserts(0).id().key() == "u2");
  CHECK(delta.upserts(1).id().key() == "u3");
  REQUIRE(delta.removals_size() == 1);
  CHECK(delta.removals(0).kind() == v1::KIND_AUTHORIZATION_POLICY);
  CHECK(delta.has_trust_bundle_pem());
  CHECK_FALSE(delta.has_trust_domain());

  IndexedSnapshot state = from;
  REQUIRE(applyResponse(delta, state).ok());
  CHECK(state == to);

  // Same state again: an empty delta.
  v1::WatchResponse none = deltaResponse(to, to, "e1");
  CHECK(none.upserts_size() == 0);
  CHECK(none.removals_size() == 0);
  CHECK_FALSE(none.has_trust_bundle_pem());
}

TEST_CASE("pod-index entries travel as their own kind and follow the cluster in deltas",
          "[distribution]") {
  model::NodeSnapshot before = baseSnapshot();
  before.pod_index = {model::podIndexEntry(pod("u7", "lone", "node2")),
                      model::podIndexEntry(pod("u8", "gone", "node3"))};
  before.pod_index[1].mesh_enabled = false;
  model::NodeSnapshot after = before;
  after.version = 8;
  after.pod_index.erase(after.pod_index.begin() + 1);                          // pod deleted
  after.pod_index.push_back(model::podIndexEntry(pod("u9", "new", "node3")));  // pod created
  after.pod_index[0].ips = {"10.244.2.77"};                                    // pod re-addressed

  IndexedSnapshot from = indexSnapshot(before);
  CHECK(from.resources.count({v1::KIND_POD_INDEX, "u7"}) == 1);
  CHECK(from.resources.count({v1::KIND_WORKLOAD, "u7"}) == 0);
  auto back = materialize(from);
  REQUIRE(back.ok());
  REQUIRE(back->pod_index.size() == 2);
  CHECK(back->pod_index[0].key.name == "lone");
  CHECK_FALSE(back->pod_index[1].mesh_enabled);

  IndexedSnapshot to = indexSnapshot(after);
  v1::WatchResponse delta = deltaResponse(from, to, "e1");
  REQUIRE(delta.upserts_size() == 2);
  CHECK(delta.upserts(0).id().kind() == v1::KIND_POD_INDEX);
  CHECK(delta.upserts(0).id().key() == "u7");
  CHECK(delta.upserts(1).id().key() == "u9");
  REQUIRE(delta.removals_size() == 1);
  CHECK(delta.removals(0).kind() == v1::KIND_POD_INDEX);
  CHECK(delta.removals(0).key() == "u8");
  IndexedSnapshot state = from;
  REQUIRE(applyResponse(delta, state).ok());
  CHECK(state == to);
  // Compact: one entry is a few hundred bytes of JSON, labels cut to the telemetry ones.
  CHECK(to.resources.at({v1::KIND_POD_INDEX, "u9"}).size() < 300);
}

TEST_CASE("a full response replaces the state", "[distribution]") {
  IndexedSnapshot state = indexSnapshot(baseSnapshot());
  model::NodeSnapshot other;
  other.version = 3;
  other.node = "node1";
  other.workloads = {pod("u9", "z", "node1")};
  IndexedSnapshot target = indexSnapshot(other);
  REQUIRE(applyResponse(fullResponse(target, "e2"), state).ok());
  CHECK(state == target);
}

TEST_CASE("a bad update is refused and leaves the last good state", "[distribution]") {
  IndexedSnapshot good = indexSnapshot(baseSnapshot());

  SECTION("delta on the wrong base version") {
    model::NodeSnapshot later = baseSnapshot();
    later.version = 12;
    IndexedSnapshot stale = good;
    stale.version = 5;
    v1::WatchResponse delta = deltaResponse(stale, indexSnapshot(later), "e1");
    IndexedSnapshot state = good;
    absl::Status s = applyResponse(delta, state);
    CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
    CHECK(state == good);
  }
  SECTION("resource that is not JSON of its kind") {
    v1::WatchResponse delta;
    delta.set_version(8);
    delta.set_base_version(7);
    delta.set_node("node1");
    v1::Resource* ok = delta.add_upserts();
    ok->mutable_id()->set_kind(v1::KIND_WORKLOAD);
    ok->mutable_id()->set_key("u5");
    ok->set_json(nlohmann::json(pod("u5", "e", "node1")).dump());
    v1::Resource* bad = delta.add_upserts();
    bad->mutable_id()->set_kind(v1::KIND_SERVICE);
    bad->mutable_id()->set_key("default/x");
    bad->set_json(R"({"key":{"ns":"default","name":"x"},"ports":"not-a-list"})");
    IndexedSnapshot state = good;
    absl::Status s = applyResponse(delta, state);
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(s.message()), Catch::Contains("Service default/x"));
    CHECK(state == good);
  }
  SECTION("delta for another node") {
    v1::WatchResponse delta = deltaResponse(good, good, "e1");
    delta.set_node("node2");
    IndexedSnapshot state = good;
    CHECK(applyResponse(delta, state).code() == absl::StatusCode::kFailedPrecondition);
    CHECK(state == good);
  }
}

// Every list of `s` in its order, as JSON: equal only if the same items sit in the same places.
std::string inOrder(const model::NodeSnapshot& s) {
  nlohmann::json j = {{"v", s.version},       {"node", s.node},
                      {"td", s.trust_domain}, {"bundle", s.trust_bundle_pem},
                      {"w", s.workloads},     {"i", s.pod_index},
                      {"s", s.services},      {"e", s.endpoints},
                      {"p", s.policies},      {"pa", s.peer_authentications},
                      {"l", s.rate_limits},   {"ra", s.request_authentications},
                      {"r", s.routes}};
  return j.dump();
}

TEST_CASE("a delta patches the materialized snapshot exactly as materializing the new state",
          "[distribution]") {
  std::mt19937 rng(GENERATE(11u, 12u, 13u));
  auto below = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  model::NodeSnapshot cluster = baseSnapshot();
  IndexedSnapshot state = indexSnapshot(cluster);
  auto held = materialize(state);
  REQUIRE(held.ok());
  int upserts = 0, removals = 0;
  for (int step = 0; step < 200; ++step) {
    // A few random edits: workloads and pod-index entries by uid, policies and services by key.
    for (int edits = 1 + below(3); edits > 0; --edits) {
      const std::string n = std::to_string(below(12));
      switch (below(5)) {
        case 0:
          std::erase_if(cluster.workloads, [&](const auto& w) { return w.uid == "u" + n; });
          cluster.workloads.push_back(pod("u" + n, "w" + std::to_string(step), "node1"));
          break;
        case 1:
          std::erase_if(cluster.pod_index, [&](const auto& w) { return w.uid == "i" + n; });
          if (below(2)) {
            cluster.pod_index.push_back(model::podIndexEntry(pod("i" + n, "x", "node2")));
          }
          break;
        case 2: {
          std::erase_if(cluster.policies, [&](const auto& p) { return p.key.name == "p" + n; });
          model::AuthorizationPolicy p;
          p.key = {below(2) ? "default" : "other", "p" + n};
          p.dry_run = below(2) != 0;
          if (below(3)) {
            cluster.policies.push_back(p);
          }
          break;
        }
        case 3:
          if (!cluster.services.empty() && below(2)) {
            cluster.services.erase(cluster.services.begin());
          } else {
            model::Service svc;
            svc.key = {"default", "s" + n};
            svc.vips = {"10.96.1." + n};
            cluster.services.push_back(svc);
          }
          break;
        default:
          cluster.trust_bundle_pem = "ROOT-" + n;
          break;
      }
    }
    cluster.version = state.version + 1;
    v1::WatchResponse delta = deltaResponse(state, indexSnapshot(cluster), "e1");
    upserts += delta.upserts_size();
    removals += delta.removals_size();
    REQUIRE(applyResponse(delta, state, &*held).ok());
    auto fresh = materialize(state);
    REQUIRE(fresh.ok());
    INFO("step " << step);
    REQUIRE(inOrder(*held) == inOrder(*fresh));
    REQUIRE(state == indexSnapshot(cluster));
  }
  CHECK(upserts > 120);
  CHECK(removals > 50);
  // A refused delta leaves both the state and the materialized snapshot as they were.
  v1::WatchResponse bad;
  bad.set_version(state.version + 1);
  bad.set_base_version(state.version);
  bad.set_node(state.node);
  v1::Resource* gone = bad.add_upserts();
  gone->mutable_id()->set_kind(v1::KIND_SERVICE);
  gone->mutable_id()->set_key("default/x");
  gone->set_json("[]");
  bad.add_removals()->CopyFrom(gone->id());
  const IndexedSnapshot before = state;
  const std::string held_before = inOrder(*held);
  CHECK(applyResponse(bad, state, &*held).code() == absl::StatusCode::kInvalidArgument);
  CHECK(state == before);
  CHECK(inOrder(*held) == held_before);
}

}  // namespace
}  // namespace ferry::distribution
