// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// RateLimitPolicy decoding: good manifests decode to the model, hostile and broken ones are
// refused with the object and field path, and a refused one that can be named leaves a
// limit-to-zero stand-in on its target (never wider access).
#include <catch2/catch.hpp>

#include "k8s/loader.h"

namespace ferry::k8s {
namespace {

using Catch::Matchers::StartsWith;

std::string limitWith(const std::string& spec) {
  return "apiVersion: security.ferry.dev/v1alpha1\nkind: RateLimitPolicy\n"
         "metadata:\n  name: rl\n  namespace: demo\nspec:\n" +
         spec;
}

model::RateLimitPolicy decodeOne(const std::string& text) {
  LoadResult r;
  r.addText(text, "rl.yaml", DecodeOptions{});
  REQUIRE(r.errors.empty());
  auto all = r.all<model::RateLimitPolicy>();
  REQUIRE(all.size() == 1);
  return all[0];
}

TEST_CASE("RateLimitPolicy decodes targetRef, selector, limits, bursts and overrides",
          "[k8s][ratelimit]") {
  model::RateLimitPolicy p =
      decodeOne(limitWith("  targetRef: {group: \"\", kind: Service, name: web, port: 80}\n"
                          "  total: {requestsPerSecond: 100, burst: 150}\n"
                          "  identity: {requestsPerSecond: 20}\n"
                          "  overrides:\n"
                          "  - requestsPerSecond: 50\n"
                          "    burst: 5\n"
                          "    clientRefs: [{kind: ServiceAccount, name: client}, "
                          "{kind: ServiceAccount, name: batch, namespace: jobs}]\n"));
  CHECK(p.key == model::ObjectKey{"demo", "rl"});
  CHECK(p.target_service == "web");
  CHECK(p.service_port == 80);
  CHECK_FALSE(p.selector.has_value());
  CHECK(p.total == model::RateLimit{100, 150});
  CHECK(p.identity == model::RateLimit{20, 20});  // burst defaults to the rate
  REQUIRE(p.overrides.size() == 1);
  CHECK(p.overrides[0].limit == model::RateLimit{50, 5});
  CHECK(p.overrides[0].service_accounts ==
        std::vector<model::ObjectKey>{{"demo", "client"}, {"jobs", "batch"}});

  model::RateLimitPolicy s =
      decodeOne(limitWith("  selector: {matchLabels: {app: db}}\n  ports: [5432, 5433]\n"
                          "  identity: {requestsPerSecond: 3}\n"));
  CHECK(s.target_service.empty());
  CHECK(s.selector == model::Labels{{"app", "db"}});
  CHECK(s.ports == std::vector<uint16_t>{5432, 5433});
  CHECK_FALSE(s.total.has_value());
}

struct Row {
  const char* description;
  const char* reason;  // the error message starts with this
  std::string spec;
};

TEST_CASE("hostile RateLimitPolicies are refused with a path, leaving a limit-to-zero stand-in",
          "[k8s][ratelimit]") {
  const std::string kTarget = "  targetRef: {kind: Service, name: web}\n";
  const std::vector<Row> rows = {
      {"no target", "RateLimitPolicy demo/rl: spec: needs exactly one of targetRef",
       "  total: {requestsPerSecond: 1}\n"},
      {"both targets", "RateLimitPolicy demo/rl: spec: needs exactly one of targetRef",
       kTarget + "  selector: {}\n  total: {requestsPerSecond: 1}\n"},
      {"no limit", "RateLimitPolicy demo/rl: spec: sets no limit", kTarget},
      {"zero rate", "RateLimitPolicy demo/rl: spec.total.requestsPerSecond: ",
       kTarget + "  total: {requestsPerSecond: 0}\n"},
      {"negative burst", "RateLimitPolicy demo/rl: spec.identity.burst: ",
       kTarget + "  identity: {requestsPerSecond: 5, burst: -1}\n"},
      {"rate over the maximum", "RateLimitPolicy demo/rl: spec.total.requestsPerSecond: ",
       kTarget + "  total: {requestsPerSecond: 1000001}\n"},
      {"rate as a string", "RateLimitPolicy demo/rl: spec.total.requestsPerSecond: ",
       kTarget + "  total: {requestsPerSecond: \"10\"}\n"},
      {"rate as a float", "RateLimitPolicy demo/rl: spec.total.requestsPerSecond: ",
       kTarget + "  total: {requestsPerSecond: 1.5}\n"},
      {"missing rate", "RateLimitPolicy demo/rl: spec.total.requestsPerSecond: required field",
       kTarget + "  total: {burst: 3}\n"},
      {"unknown field in a limit", "RateLimitPolicy demo/rl: spec.total.rps: unknown field",
       kTarget + "  total: {rps: 3}\n"},
      {"unknown field in spec", "RateLimitPolicy demo/rl: spec.limit: unknown field",
       kTarget + "  limit: {requestsPerSecond: 3}\n"},
      {"identity above total",
       "RateLimitPolicy demo/rl: spec.identity.requestsPerSecond: 20 is above total",
       kTarget + "  total: {requestsPerSecond: 10}\n  identity: {requestsPerSecond: 20}\n"},
      {"override above total",
       "RateLimitPolicy demo/rl: spec.overrides[0].requestsPerSecond: 20 is above total",
       kTarget + "  total: {requestsPerSecond: 10}\n  overrides: [{requestsPerSecond: 20, "
                 "clientRefs: [{kind: ServiceAccount, name: a}]}]\n"},
      {"override of a Pod",
       "RateLimitPolicy demo/rl: spec.overrides[0].clientRefs[0].kind: 'Pod' is not "
       "ServiceAccount",
       kTarget + "  overrides: [{requestsPerSecond: 2, clientRefs: [{kind: Pod, name: a}]}]\n"},
      {"override without clients",
       "RateLimitPolicy demo/rl: spec.overrides[0].clientRefs: needs at least one client",
       kTarget + "  overrides: [{requestsPerSecond: 2, clientRefs: []}]\n"},
      {"a client in two overrides",
       "RateLimitPolicy demo/rl: spec.overrides[1].clientRefs[0]: ServiceAccount demo/a is named "
       "by more than one override",
       kTarget + "  overrides:\n  - {requestsPerSecond: 2, clientRefs: [{kind: ServiceAccount, "
                 "name: a}]}\n  - {requestsPerSecond: 3, clientRefs: [{kind: ServiceAccount, "
                 "name: a, namespace: demo}]}\n"},
      {"target of another kind",
       "RateLimitPolicy demo/rl: spec.targetRef.kind: 'Server' is not Service",
       "  targetRef: {kind: Server, name: web}\n  total: {requestsPerSecond: 1}\n"},
      {"target in another group", "RateLimitPolicy demo/rl: spec.targetRef.group: ",
       "  targetRef: {group: policy.linkerd.io, kind: Service, name: web}\n"
       "  total: {requestsPerSecond: 1}\n"},
      {"ports with targetRef", "RateLimitPolicy demo/rl: spec.ports: only with selector",
       kTarget + "  ports: [80]\n  total: {requestsPerSecond: 1}\n"},
      {"duplicate port", "RateLimitPolicy demo/rl: spec.ports[1]: duplicate port",
       "  selector: {}\n  ports: [80, 80]\n  total: {requestsPerSecond: 1}\n"},
      {"port out of range", "RateLimitPolicy demo/rl: spec.targetRef.port: ",
       "  targetRef: {kind: Service, name: web, port: 70000}\n  total: {requestsPerSecond: 1}\n"},
      {"overrides as a map", "RateLimitPolicy demo/rl: spec.overrides: expected a list",
       kTarget + "  overrides: {a: b}\n"},
  };
  for (const auto& row : rows) {
    SECTION(row.description) {
      LoadResult r;
      r.addText(limitWith(row.spec), "rl.yaml", DecodeOptions{});
      REQUIRE(r.errors.size() == 1);
      CHECK_THAT(r.errors[0].message, StartsWith(row.reason));
      // The stand-in: the same key, limited to zero, carrying the reason.
      auto all = r.all<model::RateLimitPolicy>();
      REQUIRE(all.size() == 1);
      CHECK(all[0].key == model::ObjectKey{"demo", "rl"});
      CHECK(all[0].refused == r.errors[0].message);
      CHECK(all[0].total == model::RateLimit{0, 0});
      CHECK_FALSE(all[0].identity.has_value());
      CHECK(all[0].overrides.empty());
    }
  }
}

TEST_CASE("a refused RateLimitPolicy's stand-in keeps a readable target, else takes the namespace",
          "[k8s][ratelimit]") {
  LoadResult r;
  r.addText(limitWith("  targetRef: {kind: Service, name: web, port: 80}\n"
                      "  total: {requestsPerSecond: -3}\n"),
            "rl.yaml", DecodeOptions{});
  auto kept = r.all<model::RateLimitPolicy>();
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].target_service == "web");
  CHECK(kept[0].service_port == 80);

  LoadResult unreadable;
  unreadable.addText(limitWith("  targetRef: [web]\n  total: {requestsPerSecond: 1}\n"), "rl.yaml",
                     DecodeOptions{});
  auto all = unreadable.all<model::RateLimitPolicy>();
  REQUIRE(all.size() == 1);
  CHECK(all[0].target_service.empty());
  CHECK_FALSE(all[0].selector.has_value());  // every workload of demo
  CHECK(all[0].ports.empty());
}

}  // namespace
}  // namespace ferry::k8s
