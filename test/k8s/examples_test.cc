// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Every manifest in policies/ loads without an error and decodes to what its comments promise.
#include <catch2/catch.hpp>
#include <filesystem>

#include "k8s/loader.h"

namespace ferry::k8s {
namespace {

const model::AuthorizationPolicy& policy(const LoadResult& r, const std::string& ns,
                                         const std::string& name) {
  auto it = r.objects.find(ObjectRef{Kind::kAuthorizationPolicy, {ns, name}});
  REQUIRE(it != r.objects.end());
  return std::get<model::AuthorizationPolicy>(it->second.object);
}

std::string errorsOf(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) {
    out += e.message + "\n";
  }
  return out;
}

TEST_CASE("every file in policies/ loads on its own without errors", "[k8s][examples]") {
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(FERRY_POLICIES_DIR)) {
    auto ext = entry.path().extension();
    if (ext != ".yaml" && ext != ".yml" && ext != ".json") {
      continue;
    }
    ++files;
    INFO(entry.path());
    LoadResult r = loadFile(entry.path());
    CHECK(errorsOf(r) == "");
    CHECK(!r.objects.empty());
  }
  CHECK(files >= 7);
}

TEST_CASE("the policies folder is the demo cluster", "[k8s][examples]") {
  LoadResult r = loadFolder(FERRY_POLICIES_DIR);
  REQUIRE(errorsOf(r) == "");

  auto namespaces = r.all<model::Namespace>();
  REQUIRE(namespaces.size() == 2);
  CHECK(namespaces[0].name == "demo");
  CHECK(namespaces[0].mesh_enabled);
  CHECK_FALSE(namespaces[1].mesh_enabled);

  auto pods = r.all<model::Workload>();
  REQUIRE(pods.size() == 4);
  for (const auto& w : pods) {
    int n = w.key.name[1] - '0';
    int p = w.key.name[3] - '0';
    CHECK(w.key.ns == "demo");
    CHECK(w.node == "node" + std::to_string(n));
    REQUIRE(w.ips.size() == 2);
    CHECK(w.ips[0] == "10.244." + std::to_string(n) + "." + std::to_string(10 + p));
    CHECK(w.ips[1] == "fd00:244::" + std::to_string(n) + ":" + std::to_string(10 + p));
    CHECK(w.mesh_enabled);
    CHECK_FALSE(w.uid.empty());
  }
  const auto& n1p2 =
      std::get<model::Workload>(r.objects.at(ObjectRef{Kind::kPod, {"demo", "n1p2"}}).object);
  CHECK(n1p2.service_account == "web");
  CHECK(n1p2.workload_name == "web-v1");  // ReplicaSet hash removed
  CHECK(n1p2.labels.at("version") == "v1");

  auto services = r.all<model::Service>();
  REQUIRE(services.size() == 4);
  for (const auto& s : services) {
    REQUIRE(s.vips.size() == 1);
    CHECK(s.vips[0].rfind("10.96.", 0) == 0);
  }
  const auto& web =
      std::get<model::Service>(r.objects.at(ObjectRef{Kind::kService, {"demo", "web"}}).object);
  REQUIRE(web.ports.size() == 1);
  CHECK(web.ports[0].port == 80);
  CHECK(web.ports[0].target_port == 8080);
  CHECK(web.ports[0].app_protocol == "http");
  CHECK(web.selector == model::Labels{{"app", "web"}});

  auto slices = r.all<EndpointSlice>();
  REQUIRE(slices.size() == 4);
  std::vector<const EndpointSlice*> ptrs;
  for (const auto& s : slices) {
    ptrs.push_back(&s);
  }
  auto eps = mergeEndpointSlices({"demo", "web"}, ptrs);
  REQUIRE(eps.endpoints.size() == 2);
  CHECK(eps.endpoints[0].ip == "10.244.1.12");
  CHECK(eps.endpoints[0].workload_uid == n1p2.uid);
  CHECK(eps.endpoints[0].node == "node1");
  CHECK(eps.named_ports.at("http") == 8080);

  const auto& deny = policy(r, "demo", "deny-admin");
  CHECK(deny.action == model::PolicyAction::kDeny);
  REQUIRE(deny.rules.size() == 1);
  CHECK(deny.rules[0].to[0].paths == std::vector<std::string>{"/admin*"});
  const auto& allow = policy(r, "demo", "web-allow-client");
  CHECK(allow.action == model::PolicyAction::kAllow);
  CHECK(allow.selector == model::Labels{{"app", "web"}});
  CHECK(allow.rules.size() == 2);
  CHECK(allow.rules[0].from[0].principals[0] == "cluster.local/ns/demo/sa/client");
  const auto& isolate = policy(r, "demo", "isolate-demo");
  CHECK_FALSE(isolate.selector.has_value());
  CHECK(isolate.rules[0].from[0].not_namespaces.size() == 2);
  CHECK(policy(r, "demo", "audit-web-writes").action == model::PolicyAction::kAudit);
  CHECK(policy(r, "demo", "db-allow-web").rules[0].to[0].ports == std::vector<std::string>{"5432"});

  auto pas = r.all<model::PeerAuthentication>();
  REQUIRE(pas.size() == 1);
  CHECK(pas[0].mode == model::MtlsMode::kStrict);
  CHECK(pas[0].key.ns == "ferry-system");
  CHECK_FALSE(pas[0].selector.has_value());

  auto limits = r.all<model::RateLimitPolicy>();
  REQUIRE(limits.size() == 1);
  CHECK(limits[0].key == model::ObjectKey{"demo", "web-limits"});
  CHECK(limits[0].target_service == "web");
  CHECK(limits[0].service_port == 80);
  CHECK(limits[0].total == model::RateLimit{100, 100});
  CHECK(limits[0].identity == model::RateLimit{20, 10});
  REQUIRE(limits[0].overrides.size() == 1);
  CHECK(limits[0].overrides[0].limit == model::RateLimit{50, 50});
  CHECK(limits[0].overrides[0].service_accounts ==
        std::vector<model::ObjectKey>{{"demo", "client"}});
  CHECK(limits[0].refused.empty());

  auto routes = r.all<model::HttpRoute>();
  REQUIRE(routes.size() == 1);
  const auto& route = routes[0];
  REQUIRE(route.parent_services.size() == 1);
  CHECK(route.parent_services[0] == model::ObjectKey{"demo", "web"});
  CHECK(route.parent_ports[0] == 80);
  REQUIRE(route.rules.size() == 2);
  CHECK(route.rules[0].matches[0].headers[0].name == "x-canary");
  REQUIRE(route.rules[1].backends.size() == 2);
  CHECK(route.rules[1].backends[0].weight == 90);
  CHECK(route.rules[1].backends[1].weight == 10);
  CHECK(route.rules[1].backends[1].service == model::ObjectKey{"demo", "web-v2"});
  CHECK(route.rules[1].request_timeout_ms == 5000u);
  CHECK(route.rules[1].backend_request_timeout_ms == 2000u);
  REQUIRE(route.rules[1].retry.has_value());
  CHECK(route.rules[1].retry->attempts == 2);
  CHECK(route.rules[1].retry->codes == std::vector<uint32_t>{502, 503});
  CHECK(route.rules[1].retry->backoff_ms == 100);

  auto ras = r.all<model::RequestAuthentication>();
  REQUIRE(ras.size() == 1);
  CHECK(ras[0].selector == model::Labels{{"app", "web"}});
  REQUIRE(ras[0].jwt_rules.size() == 2);
  CHECK(ras[0].jwt_rules[0].issuer == "https://auth.demo.example");
  CHECK(ras[0].jwt_rules[0].audiences == std::vector<std::string>{"web"});
  CHECK(ras[0].jwt_rules[0].output_claim_to_headers ==
        std::vector<model::ClaimToHeader>{{"x-user", "sub"}});
  CHECK(ras[0].jwt_rules[1].jwks_uri == "https://idp.platform.example/.well-known/jwks.json");
  const auto& orders = policy(r, "demo", "web-orders-need-jwt");
  CHECK(orders.action == model::PolicyAction::kDeny);
  CHECK(orders.rules[0].from[0].not_request_principals == std::vector<std::string>{"*"});
  CHECK(orders.rules[1].when[0].key == "request.auth.claims[groups]");
}

}  // namespace
}  // namespace ferry::k8s
