// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// GRPCRoute (issue 22 point 1), decoded by the same decoder the controller uses and compiled into
// the same route table as HTTPRoutes: which rule each gRPC call (a POST to /<service>/<method>)
// matches, method matches Exact and RegularExpression, header matches, weights, and what is
// refused.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "k8s/decode.h"
#include "routing/retry.h"
#include "routing/route_table.h"
#include "routing_test_util.h"

namespace ferry::routing {
namespace {

using Catch::Matchers::Contains;
using testing::Request;

std::string grpcRoute(const std::string& rules) {
  return "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n"
         "metadata: {name: calls, namespace: shop}\nspec:\n"
         "  parentRefs: [{group: \"\", kind: Service, name: web, port: 80}]\n"
         "  rules:\n" +
         rules;
}

std::shared_ptr<const RouteTable> tableOf(const std::string& manifest) {
  auto decoded = k8s::decodeObjectText(manifest, k8s::DecodeOptions{});
  INFO((decoded.ok() ? std::string("ok") : std::string(decoded.status().message())));
  REQUIRE(decoded.ok());
  const auto& route = std::get<model::HttpRoute>(decoded->object);
  CHECK(route.key == model::ObjectKey{"shop", "grpc:calls"});
  model::NodeSnapshot view;
  view.routes.push_back(route);
  std::vector<std::string> errors;
  auto table = RouteTable::build(view, &errors);
  REQUIRE(errors.empty());
  return table;
}

// The backend of the rule a call to `path` (with `header`, when set) matches; "" when none.
std::string backendFor(const RouteTable& table, const std::string& path,
                       std::pair<std::string, std::string> header = {}) {
  Request request;
  request.method = "POST";
  request.path = path;
  if (!header.first.empty()) {
    request.header_fields.push_back(header);
  }
  const CompiledRule* rule = table.match(model::ObjectKey{"shop", "web"}, 80, request.view());
  return rule == nullptr || rule->backends().empty() ? "" : rule->backends()[0].service.name;
}

TEST_CASE("GRPCRoute: method matches as :path matches, header matches, rule order",
          "[routing][grpc]") {
  auto table = tableOf(grpcRoute(
      "  - matches: [{method: {service: shop.Cart, method: Add}}]\n"
      "    backendRefs: [{name: cart-add, port: 80}]\n"
      "  - matches: [{method: {service: shop.Cart}, headers: [{name: x-canary, value: \"yes\"}]}]\n"
      "    backendRefs: [{name: cart-canary, port: 80}]\n"
      "  - matches: [{method: {service: shop.Cart}}]\n"
      "    backendRefs: [{name: cart, port: 80}]\n"
      "  - matches: [{method: {method: Check}}]\n"
      "    backendRefs: [{name: health, port: 80}]\n"
      "  - matches: [{method: {type: RegularExpression, service: \"shop\\\\.(Pay|Bill)\", "
      "method: \"Get.*\"}}]\n"
      "    backendRefs: [{name: money, port: 80}]\n"
      "  - backendRefs: [{name: rest, port: 80}]\n"));
  struct Row {
    const char* path;
    std::pair<std::string, std::string> header;
    const char* backend;
  };
  const Row rows[] = {
      {"/shop.Cart/Add", {}, "cart-add"},
      {"/shop.Cart/Add", {"x-canary", "yes"}, "cart-add"},  // the first matching rule wins
      {"/shop.Cart/Remove", {"x-canary", "yes"}, "cart-canary"},
      {"/shop.Cart/Remove", {"x-canary", "no"}, "cart"},
      {"/shop.Cart/Remove", {}, "cart"},
      {"/shop.CartX/Remove", {}, "rest"},  // a service prefix is a whole path segment
      {"/grpc.health.v1.Health/Check", {}, "health"},
      {"/grpc.health.v1.Health/CheckAll", {}, "rest"},
      {"/shop.Pay/GetBalance", {}, "money"},
      {"/shop.Bill/GetInvoice", {}, "money"},
      {"/shop.Bill/PutInvoice", {}, "rest"},
      {"/shop.Billing/GetInvoice", {}, "rest"},  // the regex matches the whole segment
      {"/other.Svc/Call", {}, "rest"},
  };
  for (const Row& row : rows) {
    INFO(row.path << " " << row.header.first << "=" << row.header.second);
    CHECK(backendFor(*table, row.path, row.header) == row.backend);
  }
}

TEST_CASE("GRPCRoute: weighted backendRefs", "[routing][grpc]") {
  auto table = tableOf(grpcRoute(
      "  - backendRefs: [{name: v1, port: 80, weight: 90}, {name: v2, port: 80, weight: 10}]\n"));
  Request request;
  request.method = "POST";
  request.path = "/shop.Cart/Add";
  const CompiledRule* rule = table->match(model::ObjectKey{"shop", "web"}, 80, request.view());
  REQUIRE(rule != nullptr);
  REQUIRE(rule->backends().size() == 2);
  CHECK(rule->backends()[0].weight == 90);
  CHECK(rule->backends()[1].weight == 10);
  CHECK(rule->routeName() == "shop/grpc:calls");
}

TEST_CASE("GRPCRoute: what is refused", "[routing][grpc]") {
  struct Row {
    std::string rules;
    const char* message;
  };
  const Row rows[] = {
      {"  - matches: [{method: {type: Exact}}]\n    backendRefs: [{name: a, port: 80}]\n",
       "needs a service, a method or both"},
      {"  - matches: [{method: {service: \"shop/Cart\"}}]\n    backendRefs: [{name: a, port: "
       "80}]\n",
       "is not a gRPC service name"},
      {"  - matches: [{method: {service: s, method: \"Add.x\"}}]\n"
       "    backendRefs: [{name: a, port: 80}]\n",
       "is not a gRPC method name"},
      {"  - matches: [{method: {type: RegularExpression, method: \"(\"}}]\n"
       "    backendRefs: [{name: a, port: 80}]\n",
       "bad regular expression"},
      {"  - matches: [{method: {type: Prefix, service: s}}]\n    backendRefs: [{name: a, port: "
       "80}]\n",
       "is not Exact or RegularExpression"},
      {"  - matches: [{path: {value: /x}}]\n    backendRefs: [{name: a, port: 80}]\n", "path"},
      {"  - filters: [{type: URLRewrite, urlRewrite: {hostname: x}}]\n"
       "    backendRefs: [{name: a, port: 80}]\n",
       "is not a GRPCRoute filter Ferry applies"},
      {"  - timeouts: {request: 1s}\n    backendRefs: [{name: a, port: 80}]\n", "timeouts"},
  };
  for (const Row& row : rows) {
    INFO(row.rules);
    auto decoded = k8s::decodeObjectText(grpcRoute(row.rules), k8s::DecodeOptions{});
    REQUIRE_FALSE(decoded.ok());
    CHECK_THAT(std::string(decoded.status().message()), Contains(row.message));
  }
}

}  // namespace
}  // namespace ferry::routing

namespace ferry::routing {
namespace {

TEST_CASE("retry annotations: grpc-on by Istio's names, attempts, refusals", "[routing][grpc]") {
  auto parsed = parseRetryAnnotations(
      {{kRetryGrpcOn, "unavailable, cancelled,deadline-exceeded,resource-exhausted,internal"},
       {kRetryAttempts, "3"}});
  REQUIRE(parsed.ok());
  REQUIRE(parsed->has_value());
  CHECK((*parsed)->grpc_statuses == std::vector<uint32_t>{14, 1, 4, 8, 13});
  CHECK((*parsed)->attempts == 3u);
  auto none = parseRetryAnnotations({{"other", "x"}});
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  CHECK_FALSE(parseRetryAnnotations({{kRetryGrpcOn, "unavailable,5xx"}}).ok());
  CHECK_FALSE(parseRetryAnnotations({{kRetryAttempts, "many"}}).ok());

  // On a GRPCRoute (no retry field): the annotations give every rule its policy.
  auto decoded = k8s::decodeObjectText(
      "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n"
      "metadata:\n  name: calls\n  namespace: shop\n  annotations:\n"
      "    retry.ferry.dev/grpc-on: unavailable\n    retry.ferry.dev/attempts: \"2\"\nspec:\n"
      "  parentRefs: [{group: \"\", kind: Service, name: web, port: 80}]\n"
      "  rules:\n  - backendRefs: [{name: a, port: 80}]\n",
      k8s::DecodeOptions{});
  REQUIRE(decoded.ok());
  model::NodeSnapshot view;
  view.routes.push_back(std::get<model::HttpRoute>(decoded->object));
  std::vector<std::string> errors;
  auto table = RouteTable::build(view, &errors);
  REQUIRE(errors.empty());
  Request request;
  request.method = "POST";
  request.path = "/shop.Cart/Add";
  const CompiledRule* rule = table->match(model::ObjectKey{"shop", "web"}, 80, request.view());
  REQUIRE(rule != nullptr);
  CHECK(rule->retry().attempts == 2);
  CHECK(rule->retry().grpc_statuses == std::vector<uint32_t>{14});
  CHECK(retryableGrpc(rule->retry(), 1, 14));
  CHECK(retryableGrpc(rule->retry(), 2, 14));
  CHECK_FALSE(retryableGrpc(rule->retry(), 3, 14));
  CHECK_FALSE(retryableGrpc(rule->retry(), 1, 2));
}

}  // namespace
}  // namespace ferry::routing
