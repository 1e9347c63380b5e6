// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The Kubernetes source against the fake API server: every kind's create, update and delete
// reaches exactly the node views it should; watch disconnects and 410s lose nothing; a
// malformed object is refused while the rest apply.
#include "controller/kube_source.h"

#include <catch2/catch.hpp>
#include <functional>

#include "controller/view_testing.h"
#include "fakes/kube_api_server/fake_api_server.h"
#include "fakes/kube_api_server/objects.h"

namespace ferry::controller {
namespace {

using namespace ferry::testing;  // NOLINT: the object builders
using controller::testing::digests;
using controller::testing::hasKey;
using controller::testing::hasWorkload;
using controller::testing::standIn;
using controller::testing::waitUntil;
using nlohmann::json;

const std::vector<std::string> kNodes = {"node1", "node2", "node3"};

json pod(const std::string& ns, const std::string& name, const std::string& node,
         const std::string& ip, const json& labels) {
  json p = podJson(ns, name, node, ip, labels);
  p["metadata"]["uid"] = "uid-" + name;
  return p;
}

// mesh/a on node1 behind svc-a, mesh/b on node2 behind svc-b, plain/c (not in the mesh) on
// node3.
struct Cluster {
  std::unique_ptr<fakes::FakeApiServer> server;
  std::unique_ptr<kube::Client> client;
  StateStore store;
  kube::FakeSleeper sleeper;
  std::unique_ptr<KubeSource> source;

  Cluster() {
    auto s = fakes::FakeApiServer::start();
    REQUIRE(s.ok());
    server = std::move(*s);
    client = std::make_unique<kube::Client>(server->clientConfig());
    for (const json& obj : {
             meshNamespaceJson("mesh"),
             namespaceJson("plain"),
             namespaceJson("ferry-system"),
             pod("mesh", "a", "node1", "10.244.1.10", {{"app", "a"}}),
             pod("mesh", "b", "node2", "10.244.2.10", {{"app", "b"}}),
             pod("plain", "c", "node3", "10.244.3.10", {{"app", "c"}}),
             serviceJson("mesh", "svc-a", "10.96.0.10", {{"app", "a"}}),
             serviceJson("mesh", "svc-b", "10.96.0.11", {{"app", "b"}}),
             endpointSliceJson("mesh", "svc-a-1", "svc-a",
                               {{"10.244.1.10", "node1", "a", "uid-a"}}),
             endpointSliceJson("mesh", "svc-b-1", "svc-b",
                               {{"10.244.2.10", "node2", "b", "uid-b"}}),
         }) {
      apply(obj);
    }
    KubeSourceOptions options;
    options.sleeper = &sleeper;
    options.informer.page_size = 3;
    source = std::make_unique<KubeSource>(*client, store, options);
    REQUIRE(source->start().ok());
    REQUIRE(source->waitForSync(std::chrono::seconds(10)));
    // One watch per kind the source watches (kAllKinds in controller/kube_source.cc): a test that
    // drops watches must find every one open, or a kind between list and watch misses the drop.
    REQUIRE(server->waitForOpenWatches(std::size(k8s::kAllKinds), std::chrono::seconds(10)));
  }
  ~Cluster() { source->stop(); }

  void apply(const json& obj) { REQUIRE(server->apply(obj).ok()); }
  void remove(const kube::Resource& r, const std::string& ns, const std::string& name) {
    REQUIRE(server->remove(r, ns, name).ok());
  }
  model::NodeSnapshot view(const std::string& node) const { return store.snapshotFor(node); }

  // Runs `change`, waits for `applied`, then checks which node views changed.
  void expect(const std::string& what, const std::function<void()>& change,
              const std::function<bool()>& applied, const std::set<std::string>& changed) {
    INFO(what);
    const auto before = digests(store, kNodes);
    const uint64_t version = store.version();
    change();
    REQUIRE(waitUntil([&] { return store.version() > version && applied(); }));
    const auto after = digests(store, kNodes);
    for (const auto& node : kNodes) {
      INFO(node << " before:\n" << before.at(node) << "after:\n" << after.at(node));
      CHECK((before.at(node) != after.at(node)) == (changed.count(node) == 1));
    }
  }
};

TEST_CASE("the initial list builds node-scoped views") {
  Cluster c;
  auto n1 = c.view("node1");
  CHECK(hasWorkload(n1, "mesh", "a"));
  CHECK(hasWorkload(n1, "mesh", "b"));  // remote endpoint of svc-b
  CHECK(hasKey(n1.services, "mesh", "svc-a"));
  CHECK(hasKey(n1.services, "mesh", "svc-b"));
  CHECK(n1.endpoints.size() == 2);
  auto n3 = c.view("node3");
  REQUIRE(n3.workloads.size() == 1);
  CHECK_FALSE(n3.workloads[0].mesh_enabled);  // plain is not a mesh namespace
  CHECK(n3.services.empty());
  CHECK(c.store.findWorkload({"mesh", "a"})->service_account == "default");
  CHECK(c.store.findWorkload({"mesh", "a"})->mesh_enabled);
}

TEST_CASE("Pod create, update and delete reach the right node views only") {
  Cluster c;
  c.expect(
      "create a local pod",
      [&] {
        c.apply(pod("mesh", "a2", "node1", "10.244.1.11", {{"app", "a"}}));
      },
      // node2 runs a mesh pod: a2 enters its pod index. node3 runs none: no index.
      [&] { return hasWorkload(c.view("node1"), "mesh", "a2"); }, {"node1", "node2"});
  c.expect(
      "update a label telemetry does not read (the pod index leaves it out)",
      [&] {
        c.apply(pod("mesh", "a2", "node1", "10.244.1.11", {{"app", "a"}, {"v", "2"}}));
      },
      [&] {
        return c.store.findWorkload({"mesh", "a2"})->labels.count("v") == 1;
      },
      {"node1"});
  c.expect(
      "update a pod behind a service (local to node2, remote endpoint for node1)",
      [&] {
        c.apply(pod("mesh", "b", "node2", "10.244.2.10", {{"app", "b"}, {"v", "2"}}));
      },
      [&] {
        return c.store.findWorkload({"mesh", "b"})->labels.count("v") == 1;
      },
      {"node1", "node2"});
  c.expect(
      "opt a pod out of the mesh",
      [&] {
        c.apply(pod("mesh", "a2", "node1", "10.244.1.11",
                    {{"app", "a"}, {"ferry.dev/mesh", "disabled"}}));
      },
      [&] {
        return !c.store.findWorkload({"mesh", "a2"})->mesh_enabled;
      },
      {"node1", "node2"});
  c.expect(
      "delete it", [&] { c.remove(kube::kPods, "mesh", "a2"); },
      [&] { return !hasWorkload(c.view("node1"), "mesh", "a2"); }, {"node1", "node2"});
}

TEST_CASE("Namespace create, update and delete reach the right node views only") {
  Cluster c;
  c.expect(
      "enrol namespace plain in the mesh", [&] { c.apply(meshNamespaceJson("plain")); },
      [&] {
        return c.store.findWorkload({"plain", "c"})->mesh_enabled;
      },
      {"node1", "node2", "node3"});             // c joins the mesh in node1's and node2's pod index
  CHECK(c.view("node3").services.size() == 2);  // node3 now runs a mesh pod
  c.expect(
      "create an empty mesh namespace", [&] { c.apply(meshNamespaceJson("extra")); },
      [&] { return c.store.count(k8s::Kind::kNamespace) == 4; }, {});
  c.expect(
      "delete namespace plain", [&] { c.remove(kube::kNamespaces, "", "plain"); },
      [&] {
        return !c.store.findWorkload({"plain", "c"})->mesh_enabled;
      },
      {"node1", "node2", "node3"});
}

TEST_CASE("ServiceAccount create, update and delete reach no node view") {
  Cluster c;
  c.expect(
      "create", [&] { c.apply(serviceAccountJson("mesh", "web")); },
      [&] { return c.store.count(k8s::Kind::kServiceAccount) == 1; }, {});
  const uint64_t v = c.store.version();
  auto sa = serviceAccountJson("mesh", "web");
  sa["metadata"]["labels"] = {{"team", "x"}};
  c.apply(sa);
  REQUIRE(waitUntil([&] { return c.store.version() > v; }));
  c.expect(
      "delete", [&] { c.remove(kube::kServiceAccounts, "mesh", "web"); },
      [&] { return c.store.count(k8s::Kind::kServiceAccount) == 0; }, {});
}

TEST_CASE("Service create, update and delete reach the right node views only") {
  Cluster c;
  c.expect(
      "create in a mesh namespace",
      [&] {
        c.apply(serviceJson("mesh", "svc-n", "10.96.0.20", {{"app", "n"}}));
      },
      [&] { return hasKey(c.view("node1").services, "mesh", "svc-n"); }, {"node1", "node2"});
  c.expect(
      "update",
      [&] {
        c.apply(serviceJson("mesh", "svc-n", "10.96.0.21", {{"app", "n"}}));
      },
      [&] {
        for (const auto& s : c.view("node2").services) {
          if (s.key.name == "svc-n")
            return s.vips == std::vector<std::string>{"10.96.0.21"};
        }
        return false;
      },
      {"node1", "node2"});
  // A Service outside the mesh reaches every node that runs a mesh pod (their agents refuse a
  // ClusterIP they do not know), not node3, which runs none.
  c.expect(
      "create outside the mesh",
      [&] {
        c.apply(serviceJson("plain", "svc-p", "10.96.0.30", {{"app", "c"}}));
      },
      [&] { return hasKey(c.view("node1").services, "plain", "svc-p"); }, {"node1", "node2"});
  CHECK(c.view("node3").services.empty());
  c.expect(
      "delete", [&] { c.remove(kube::kServices, "mesh", "svc-n"); },
      [&] { return !hasKey(c.view("node1").services, "mesh", "svc-n"); }, {"node1", "node2"});
}

TEST_CASE("EndpointSlice create, update and delete reach the right node views only") {
  auto endpointCount = [](const model::NodeSnapshot& s, const std::string& svc) {
    for (const auto& e : s.endpoints) {
      if (e.service.name == svc)
        return e.endpoints.size();
    }
    return size_t{0};
  };
  Cluster c;
  c.expect(
      "create a second slice",
      [&] {
        c.apply(endpointSliceJson("mesh", "svc-a-2", "svc-a", {{"10.244.9.9", "node9", "", ""}}));
      },
      [&] { return endpointCount(c.view("node1"), "svc-a") == 2; }, {"node1", "node2"});
  c.expect(
      "update it",
      [&] {
        c.apply(
            endpointSliceJson("mesh", "svc-a-2", "svc-a",
                              {{"10.244.9.9", "node9", "", ""}, {"10.244.9.8", "node9", "", ""}}));
      },
      [&] { return endpointCount(c.view("node2"), "svc-a") == 3; }, {"node1", "node2"});
  c.expect(
      "delete it", [&] { c.remove(kube::kEndpointSlices, "mesh", "svc-a-2"); },
      [&] { return endpointCount(c.view("node1"), "svc-a") == 1; }, {"node1", "node2"});
}

TEST_CASE("AuthorizationPolicy create, update and delete reach the right node views only") {
  Cluster c;
  auto has = [&](const std::string& node, const std::string& ns, const std::string& name) {
    return hasKey(c.view(node).policies, ns, name);
  };
  c.expect(
      "create selecting app=a",
      [&] {
        c.apply(authorizationPolicyJson("mesh", "p", {{"app", "a"}}));
      },
      [&] { return has("node1", "mesh", "p"); }, {"node1"});
  c.expect(
      "move the selector to app=b",
      [&] {
        c.apply(authorizationPolicyJson("mesh", "p", {{"app", "b"}}));
      },
      [&] { return has("node2", "mesh", "p") && !has("node1", "mesh", "p"); }, {"node1", "node2"});
  c.expect(
      "delete", [&] { c.remove(kube::kAuthorizationPolicies, "mesh", "p"); },
      [&] { return !has("node2", "mesh", "p"); }, {"node2"});
  c.expect(
      "a mesh-wide policy in the root namespace",
      [&] { c.apply(authorizationPolicyJson("ferry-system", "all", nullptr, "DENY")); },
      [&] { return has("node1", "ferry-system", "all"); }, {"node1", "node2"});
  c.expect(
      "a policy in a namespace with no pods",
      [&] { c.apply(authorizationPolicyJson("plain", "q", nullptr)); },
      [&] { return c.store.count(k8s::Kind::kAuthorizationPolicy) == 2; }, {});
}

TEST_CASE("PeerAuthentication create, update and delete reach the right node views only") {
  Cluster c;
  auto has = [&](const std::string& node) {
    return hasKey(c.view(node).peer_authentications, "mesh", "pa");
  };
  c.expect(
      "create selecting app=b",
      [&] {
        c.apply(peerAuthenticationJson("mesh", "pa", {{"app", "b"}}));
      },
      [&] { return has("node2"); }, {"node2"});
  c.expect(
      "update its mode",
      [&] {
        c.apply(peerAuthenticationJson("mesh", "pa", {{"app", "b"}}, "PERMISSIVE"));
      },
      [&] { return c.view("node2").peer_authentications[0].mode == model::MtlsMode::kPermissive; },
      {"node2"});
  c.expect(
      "delete", [&] { c.remove(kube::kPeerAuthentications, "mesh", "pa"); },
      [&] { return !has("node2"); }, {"node2"});
}

TEST_CASE("RateLimitPolicy create, retarget, refusal and delete reach the right node views only") {
  Cluster c;
  auto limit = [&](const std::string& node) {
    auto limits = c.view(node).rate_limits;
    return limits.empty() ? std::optional<model::RateLimitPolicy>() : limits[0];
  };
  c.expect(
      "create selecting app=b",
      [&] {
        c.apply(rateLimitPolicyJson("mesh", "rl", {{"selector", {{"matchLabels", {{"app", "b"}}}}}},
                                    10));
      },
      [&] { return limit("node2").has_value(); }, {"node2"});
  CHECK(limit("node2")->total == model::RateLimit{10, 10});
  c.expect(
      "retarget to Service svc-a: every node with a mesh pod of the namespace",
      [&] {
        c.apply(rateLimitPolicyJson("mesh", "rl",
                                    {{"targetRef", {{"kind", "Service"}, {"name", "svc-a"}}}}, 10));
      },
      [&] { return limit("node1").has_value() && limit("node2")->target_service == "svc-a"; },
      {"node1", "node2"});
  c.expect(
      "a bad edit: the limit-to-zero stand-in takes its place",
      [&] {
        c.apply(rateLimitPolicyJson("mesh", "rl",
                                    {{"targetRef", {{"kind", "Service"}, {"name", "svc-a"}}}}, 0));
      },
      [&] { return limit("node1") && !limit("node1")->refused.empty(); }, {"node1", "node2"});
  CHECK(limit("node1")->total == model::RateLimit{0, 0});
  CHECK(limit("node1")->target_service == "svc-a");
  CHECK_FALSE(limit("node3").has_value());
  c.expect(
      "delete", [&] { c.remove(kube::kRateLimitPolicies, "mesh", "rl"); },
      [&] { return !limit("node1") && !limit("node2"); }, {"node1", "node2"});
}

TEST_CASE("HTTPRoute create, update and delete reach the right node views only") {
  Cluster c;
  auto route = [&](const std::string& node) {
    auto routes = c.view(node).routes;
    return routes.empty() ? std::optional<model::HttpRoute>() : routes[0];
  };
  c.expect(
      "create on svc-a", [&] { c.apply(httpRouteJson("mesh", "r", "svc-a", "svc-b", 1)); },
      [&] { return route("node1").has_value(); }, {"node1", "node2"});
  c.expect(
      "update the weight", [&] { c.apply(httpRouteJson("mesh", "r", "svc-a", "svc-b", 7)); },
      [&] { return route("node2") && route("node2")->rules[0].backends[0].weight == 7; },
      {"node1", "node2"});
  c.expect(
      "delete", [&] { c.remove(kube::kHttpRoutes, "mesh", "r"); },
      [&] { return !route("node1").has_value(); }, {"node1", "node2"});
}

// Changes to several kinds while the informers are away.
void changeWhileAway(Cluster& c) {
  c.apply(authorizationPolicyJson("mesh", "away-policy", {{"app", "a"}}));
  c.apply(pod("mesh", "away-pod", "node2", "10.244.2.20", {{"app", "b"}}));
  c.remove(kube::kServices, "mesh", "svc-b");
  c.apply(httpRouteJson("mesh", "away-route", "svc-a", "svc-a"));
}

bool awayChangesApplied(Cluster& c) {
  auto n1 = c.view("node1");
  auto n2 = c.view("node2");
  return hasKey(n1.policies, "mesh", "away-policy") && hasWorkload(n2, "mesh", "away-pod") &&
         !hasKey(n1.services, "mesh", "svc-b") && hasKey(n2.routes, "mesh", "away-route");
}

TEST_CASE("an injected watch disconnect loses no update") {
  Cluster c;
  uint64_t lists = 0;
  for (auto kind : {k8s::Kind::kPod, k8s::Kind::kService, k8s::Kind::kAuthorizationPolicy}) {
    lists += c.server->listRequests(resourceFor(kind));
  }
  c.server->dropWatches();
  changeWhileAway(c);
  CHECK(waitUntil([&] { return awayChangesApplied(c); }));
  uint64_t lists_after = 0;
  for (auto kind : {k8s::Kind::kPod, k8s::Kind::kService, k8s::Kind::kAuthorizationPolicy}) {
    lists_after += c.server->listRequests(resourceFor(kind));
  }
  CHECK(lists_after == lists);  // resumed from resourceVersion, no relist needed
  CHECK(c.source->informer(k8s::Kind::kPod).stats().errors.load() >= 1);
}

TEST_CASE("an injected 410 Gone loses no update") {
  Cluster c;
  for (auto kind : {k8s::Kind::kNamespace, k8s::Kind::kServiceAccount, k8s::Kind::kPod,
                    k8s::Kind::kService, k8s::Kind::kEndpointSlice, k8s::Kind::kAuthorizationPolicy,
                    k8s::Kind::kPeerAuthentication, k8s::Kind::kHttpRoute}) {
    c.server->failNextWatches(resourceFor(kind), 1);  // every informer's next watch
  }
  c.server->dropWatches();
  changeWhileAway(c);
  c.server->compact();
  CHECK(waitUntil([&] { return awayChangesApplied(c); }));
  CHECK(c.source->informer(k8s::Kind::kService).stats().gone.load() >= 1);
  CHECK(c.source->informer(k8s::Kind::kService).stats().lists.load() >= 2);
  // Deleted while away: the relist removed it.
  CHECK(c.store.count(k8s::Kind::kService) == 1);
}

TEST_CASE("a malformed policy is refused with a reason and fails closed", "[kube]") {
  Cluster c;
  json bad = authorizationPolicyJson("mesh", "bad", {{"app", "a"}});
  bad["spec"]["action"] = "MAYBE";
  const uint64_t rejected = c.store.stats().rejected.load();
  c.apply(bad);
  c.apply(authorizationPolicyJson("mesh", "good", {{"app", "a"}}));
  REQUIRE(waitUntil([&] { return hasKey(c.view("node1").policies, "mesh", "good"); }));
  // The refused ALLOW is in force as a deny-all stand-in for the workloads it selects.
  REQUIRE(waitUntil([&] { return standIn(c.view("node1").policies, "bad") != nullptr; }));
  CHECK(standIn(c.view("node1").policies, "bad")->selector == model::Labels{{"app", "a"}});
  CHECK(c.store.stats().rejected.load() == rejected + 1);
  auto reasons = c.store.recentRejections();
  REQUIRE_FALSE(reasons.empty());
  CHECK(reasons.back().find("mesh/bad") != std::string::npos);
  CHECK(reasons.back().find("action") != std::string::npos);

  // A bad edit of a policy in force makes it fail closed until fixed.
  json broken = authorizationPolicyJson("mesh", "good", {{"app", "a"}}, "DENY");
  broken["spec"]["rules"][0]["to"][0]["operation"]["methodz"] = {"GET"};
  c.apply(broken);
  REQUIRE(waitUntil([&] { return standIn(c.view("node1").policies, "good") != nullptr; }));
  CHECK(c.store.stats().rejected.load() == rejected + 2);
  CHECK(c.store.failingClosedPolicies() == 2);
  // On a relist the bad ones are refused again and stay failing closed.
  c.server->failNextWatches(kube::kAuthorizationPolicies, 1);
  c.server->dropWatches();
  REQUIRE(waitUntil([&] { return c.store.stats().rejected.load() >= rejected + 4; }));
  CHECK(standIn(c.view("node1").policies, "good") != nullptr);
  CHECK(c.store.count(k8s::Kind::kAuthorizationPolicy) == 2);
  // Fixing it applies the fixed version.
  c.apply(authorizationPolicyJson("mesh", "good", {{"app", "a"}}));
  REQUIRE(waitUntil([&] { return standIn(c.view("node1").policies, "good") == nullptr; }));
  CHECK(hasKey(c.view("node1").policies, "mesh", "good"));
}

TEST_CASE("admission: unknown field, bad value and wrong type are each refused, naming the field") {
  struct Row {
    const char* description;
    std::function<void(json&)> spoil;
    const char* reason_mentions;
  };
  std::vector<Row> rows = {
      {"unknown field in an operation",
       [](json& p) { p["spec"]["rules"][0]["to"][0]["operation"]["pathz"] = {"/x"}; }, "pathz"},
      {"unknown field in spec", [](json& p) { p["spec"]["actionz"] = "DENY"; }, "actionz"},
      {"bad action value", [](json& p) { p["spec"]["action"] = "MAYBE"; }, "action"},
      {"bad ipBlock value",
       [](json& p) { p["spec"]["rules"][0]["from"][0]["source"]["ipBlocks"] = {"10.0.0.0/99"}; },
       "ipBlocks"},
      {"bad port value",
       [](json& p) { p["spec"]["rules"][0]["to"][0]["operation"]["ports"] = {"http"}; }, "ports"},
      {"wrong type: paths as a string",
       [](json& p) { p["spec"]["rules"][0]["to"][0]["operation"]["paths"] = "/admin"; }, "paths"},
      {"wrong type: rules as an object",
       [](json& p) {
         p["spec"]["rules"] = {{"from", 1}};
       },
       "rules"},
      {"wrong type: principals as a number",
       [](json& p) { p["spec"]["rules"][0]["from"][0]["source"]["principals"] = 7; }, "principals"},
  };
  Cluster c;
  int n = 0;
  for (const Row& row : rows) {
    INFO(row.description);
    std::string name = "bad-" + std::to_string(n);
    std::string good = "good-" + std::to_string(n++);
    json bad = authorizationPolicyJson("mesh", name, {{"app", "a"}});
    row.spoil(bad);
    const uint64_t rejected = c.store.stats().rejected.load();
    c.apply(bad);
    c.apply(authorizationPolicyJson("mesh", good, {{"app", "a"}}));
    REQUIRE(waitUntil([&] { return hasKey(c.view("node1").policies, "mesh", good); }));
    // Refused, and in force as a deny-all stand-in.
    REQUIRE(waitUntil([&] { return standIn(c.view("node1").policies, name) != nullptr; }));
    CHECK(c.store.stats().rejected.load() == rejected + 1);
    auto reasons = c.store.recentRejections();
    REQUIRE_FALSE(reasons.empty());
    INFO(reasons.back());
    CHECK(reasons.back().find("mesh/" + name) != std::string::npos);
    CHECK(reasons.back().find(row.reason_mentions) != std::string::npos);
  }
}

}  // namespace
}  // namespace ferry::controller
