// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// HTTPRoute RequestMirror (issue 21 point 3): percent, fraction, and what is refused. A refused
// route is skipped whole, so a bad mirror never sends copies anywhere (fail closed, as for any
// other bad backendRef).
#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "k8s/decode.h"

namespace ferry::k8s {
namespace {

using Catch::Matchers::Contains;

std::string routeWithMirror(const std::string& mirror) {
  return "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
         "metadata: {name: m, namespace: demo}\nspec:\n"
         "  parentRefs: [{group: \"\", kind: Service, name: web, port: 80}]\n"
         "  rules:\n  - backendRefs: [{name: web-v1, port: 80}]\n"
         "    filters:\n    - type: RequestMirror\n      requestMirror: " +
         mirror + "\n";
}

TEST_CASE("RequestMirror: percent, fraction and their defaults", "[k8s][mirror]") {
  struct Row {
    const char* mirror;
    uint32_t numerator, denominator;
    const char* ns;
  };
  const Row rows[] = {
      {"{backendRef: {name: shadow, port: 8080}}", 100, 100, "demo"},
      {"{backendRef: {name: shadow, port: 8080}, percent: 0}", 0, 100, "demo"},
      {"{backendRef: {name: shadow, port: 8080}, percent: 50}", 50, 100, "demo"},
      {"{backendRef: {name: shadow, port: 8080}, percent: 100}", 100, 100, "demo"},
      {"{backendRef: {name: shadow, port: 8080}, fraction: {numerator: 1, denominator: 3}}", 1, 3,
       "demo"},
      {"{backendRef: {name: shadow, port: 8080}, fraction: {numerator: 25}}", 25, 100, "demo"},
      {"{backendRef: {name: shadow, port: 8080}, fraction: {numerator: 0, denominator: 1}}", 0, 1,
       "demo"},
      {"{backendRef: {name: shadow, port: 8080}, fraction: {numerator: 7, denominator: 7}}", 7, 7,
       "demo"},
      {"{backendRef: {group: \"\", kind: Service, name: shadow, namespace: other, port: 8080}}",
       100, 100, "other"},
  };
  for (const Row& row : rows) {
    INFO(row.mirror);
    auto d = decodeObjectText(routeWithMirror(row.mirror), DecodeOptions{});
    INFO((d.ok() ? std::string("ok") : std::string(d.status().message())));
    REQUIRE(d.ok());
    const auto& route = std::get<model::HttpRoute>(d->object);
    REQUIRE(route.rules.size() == 1);
    const model::HttpRouteRule& rule = route.rules[0];
    REQUIRE(rule.mirror.has_value());
    CHECK(rule.mirror->service == model::ObjectKey{row.ns, "shadow"});
    CHECK(rule.mirror->port == 8080);
    CHECK(rule.mirror_numerator == row.numerator);
    CHECK(rule.mirror_denominator == row.denominator);
  }
}

TEST_CASE("RequestMirror: both shares, bad shares and bad backend refs are refused",
          "[k8s][mirror]") {
  struct Row {
    const char* description;
    std::string manifest;
    const char* reason;  // the message contains this
  };
  const std::string shadow = "backendRef: {name: shadow, port: 8080}";
  const Row rows[] = {
      {"percent and fraction (Gateway API: only one of them)",
       routeWithMirror("{" + shadow + ", percent: 50, fraction: {numerator: 1}}"),
       "spec.rules[0].filters[0].requestMirror.fraction: only one of percent and fraction"},
      {"percent over 100", routeWithMirror("{" + shadow + ", percent: 101}"),
       "requestMirror.percent: 101 is out of range"},
      {"negative percent", routeWithMirror("{" + shadow + ", percent: -1}"),
       "requestMirror.percent: -1 is out of range"},
      {"numerator over denominator",
       routeWithMirror("{" + shadow + ", fraction: {numerator: 3, denominator: 2}}"),
       "requestMirror.fraction.numerator: 3 is out of range"},
      {"zero denominator",
       routeWithMirror("{" + shadow + ", fraction: {numerator: 0, denominator: 0}}"),
       "requestMirror.fraction.denominator: 0 is out of range"},
      {"fraction without numerator",
       routeWithMirror("{" + shadow + ", fraction: {denominator: 10}}"),
       "requestMirror.fraction.numerator: required field is missing"},
      {"unknown field in fraction",
       routeWithMirror("{" + shadow + ", fraction: {numerator: 1, denom: 10}}"),
       "requestMirror.fraction.denom: unknown field"},
      {"no backendRef", routeWithMirror("{percent: 10}"),
       "requestMirror.backendRef: required field is missing"},
      {"backend of another kind",
       routeWithMirror("{backendRef: {kind: ServiceImport, name: shadow, port: 8080}}"),
       "requestMirror.backendRef.kind: backend ServiceImport is not supported"},
      {"backend without a port", routeWithMirror("{backendRef: {name: shadow}}"),
       "requestMirror.backendRef.port"},
      {"backend name not a DNS label",
       routeWithMirror("{backendRef: {name: Shadow_1, port: 8080}}"),
       "requestMirror.backendRef.name"},
      {"backend port out of range", routeWithMirror("{backendRef: {name: shadow, port: 0}}"),
       "requestMirror.backendRef.port: 0 is out of range"},
      {"requestMirror missing",
       "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
       "metadata: {name: m, namespace: demo}\nspec:\n"
       "  parentRefs: [{kind: Service, name: web}]\n"
       "  rules: [{filters: [{type: RequestMirror}]}]\n",
       "requestMirror: required with type RequestMirror"},
      {"two mirrors in one rule",
       "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
       "metadata: {name: m, namespace: demo}\nspec:\n"
       "  parentRefs: [{kind: Service, name: web}]\n"
       "  rules: [{filters: [{type: RequestMirror, requestMirror: {" +
           shadow + "}}, {type: RequestMirror, requestMirror: {" + shadow + "}}]}]\n",
       "Ferry supports one RequestMirror filter per rule"},
  };
  for (const Row& row : rows) {
    SECTION(row.description) {
      auto d = decodeObjectText(row.manifest, DecodeOptions{});
      REQUIRE_FALSE(d.ok());
      CHECK_THAT(std::string(d.status().message()), Contains(row.reason));
    }
  }
}

}  // namespace
}  // namespace ferry::k8s
