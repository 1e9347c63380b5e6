// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// What well-formed objects decode to: defaults, JSON input, lists, mesh membership, owners.
#include <catch2/catch.hpp>
#include <optional>

#include "absl/strings/str_join.h"
#include "k8s/decode.h"
#include "k8s/loader.h"

namespace ferry::k8s {
namespace {

template <typename T>
T decodeAs(const std::string& text, const DecodeOptions& options = {}) {
  auto d = decodeObjectText(text, options);
  INFO((d.ok() ? std::string("ok") : std::string(d.status().message())));
  REQUIRE(d.ok());
  REQUIRE(std::holds_alternative<T>(d->object));
  return std::get<T>(d->object);
}

TEST_CASE("an AuthorizationPolicy with no spec is ALLOW with no rules", "[k8s]") {
  auto p = decodeAs<model::AuthorizationPolicy>(
      "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
      "metadata: {name: deny-all, namespace: demo}\nspec: {}\n");
  CHECK(p.key == model::ObjectKey{"demo", "deny-all"});
  CHECK(p.action == model::PolicyAction::kAllow);
  CHECK(p.rules.empty());
  CHECK_FALSE(p.selector.has_value());
  CHECK_FALSE(p.root_namespace);
}

TEST_CASE("AuthorizationPolicy: serviceAccounts, source {} and the dry-run annotation", "[k8s]") {
  auto p = decodeAs<model::AuthorizationPolicy>(
      "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
      "metadata: {name: p, namespace: demo, annotations: {istio.io/dry-run: 'true'}}\n"
      "spec:\n  action: DENY\n  rules:\n"
      "  - from: [{source: {serviceAccounts: [demo/client], notServiceAccounts: [ops/x.y]}}, "
      "{source: {}}]\n");
  CHECK(p.dry_run);
  CHECK(p.refused.empty());
  REQUIRE(p.rules.size() == 1);
  REQUIRE(p.rules[0].from.size() == 2);
  CHECK(p.rules[0].from[0].service_accounts == std::vector<std::string>{"demo/client"});
  CHECK(p.rules[0].from[0].not_service_accounts == std::vector<std::string>{"ops/x.y"});
  CHECK(p.rules[0].from[1].principals.empty());
  auto enforced = decodeAs<model::AuthorizationPolicy>(
      "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
      "metadata: {name: p, namespace: demo, annotations: {istio.io/dry-run: 'false'}}\n"
      "spec: {}\n");
  CHECK_FALSE(enforced.dry_run);
}

TEST_CASE("a refused AuthorizationPolicy leaves a fail-closed stand-in", "[k8s]") {
  struct Row {
    const char* description;
    std::string manifest;
    bool stand_in;
    std::optional<model::Labels> selector;
  };
  const std::string head =
      "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
      "metadata: {name: p, namespace: demo}\n";
  std::vector<Row> rows = {
      {"bad rule, readable selector",
       head + "spec: {selector: {matchLabels: {app: web}}, rules: [{to: [{operation: {pathz: "
              "[/]}}]}]}\n",
       true, model::Labels{{"app", "web"}}},
      {"unreadable selector: the whole namespace",
       head + "spec: {selector: {matchExpressions: []}, action: DENY}\n", true, std::nullopt},
      {"CUSTOM action", head + "spec: {action: CUSTOM, provider: {name: x}}\n", true, std::nullopt},
      {"refused AUDIT: nothing in its place",
       head + "spec: {action: AUDIT, rules: [{from: [{source: {ipBlocks: [x]}}]}]}\n", false,
       std::nullopt},
      {"refused dry-run: nothing in its place",
       "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
       "metadata: {name: p, namespace: demo, annotations: {istio.io/dry-run: 'true'}}\n"
       "spec: {action: NEVER}\n",
       false, std::nullopt},
  };
  for (const auto& row : rows) {
    INFO(row.description);
    auto docs = decodeDocuments(row.manifest, "p.yaml");
    REQUIRE(docs.size() == 1);
    REQUIRE_FALSE(docs[0].decoded.ok());
    REQUIRE(docs[0].stand_in.has_value() == row.stand_in);
    if (!row.stand_in) {
      continue;
    }
    const auto& p = std::get<model::AuthorizationPolicy>(docs[0].stand_in->object);
    CHECK(docs[0].stand_in->ref == ObjectRef{Kind::kAuthorizationPolicy, {"demo", "p"}});
    CHECK(p.action == model::PolicyAction::kDeny);
    REQUIRE(p.rules.size() == 1);
    CHECK(p.rules[0].from.empty());
    CHECK(p.selector == row.selector);
    CHECK(p.refused == std::string(docs[0].decoded.status().message()));
  }
}

TEST_CASE("a policy in the root namespace is mesh-wide", "[k8s]") {
  DecodeOptions options;
  options.root_namespace = "mesh-root";
  auto p = decodeAs<model::AuthorizationPolicy>(
      "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
      "metadata: {name: p, namespace: mesh-root}\n"
      "spec: {action: DENY, rules: [{from: [{source: {notPrincipals: ['*']}}]}]}\n",
      options);
  CHECK(p.root_namespace);
  CHECK(p.action == model::PolicyAction::kDeny);
  CHECK(p.rules[0].from[0].not_principals == std::vector<std::string>{"*"});
}

TEST_CASE("JSON as the API server sends it decodes the same as YAML", "[k8s]") {
  auto p = decodeAs<model::AuthorizationPolicy>(R"({
    "apiVersion": "security.ferry.dev/v1alpha1", "kind": "AuthorizationPolicy",
    "metadata": {"name": "p", "namespace": "demo", "resourceVersion": "42",
                 "uid": "abc", "generation": 3, "creationTimestamp": "2026-01-01T00:00:00Z"},
    "spec": {"selector": {"matchLabels": {"app": "web"}}, "action": "AUDIT",
             "rules": [{"to": [{"operation": {"ports": ["8080"], "methods": ["GET"]}}],
                        "when": [{"key": "request.headers[X-Token]", "values": ["abc*"]}]}]}})");
  CHECK(p.action == model::PolicyAction::kAudit);
  CHECK(p.selector == model::Labels{{"app", "web"}});
  CHECK(p.rules[0].when[0].key == "request.headers[X-Token]");
  auto d = decodeObjectText(
      R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x","resourceVersion":"7"}})");
  REQUIRE(d.ok());
  CHECK(d->resource_version == "7");
  CHECK(d->ref.str() == "Namespace x");
}

TEST_CASE("pods: identity, IPs, owner workload and mesh opt-out", "[k8s]") {
  auto w = decodeAs<model::Workload>(R"(
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v2-5d8f7b9c4-x2x9z
  namespace: shop
  uid: 1234
  labels: {app: reviews, pod-template-hash: 5d8f7b9c4, ferry.dev/mesh: disabled}
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: reviews-v2-5d8f7b9c4, uid: r, controller: true}
spec: {serviceAccountName: reviews, nodeName: node2, containers: [{name: a, image: b}]}
status: {podIP: 10.244.2.11, phase: Running}
)");
  CHECK(w.uid == "1234");
  CHECK(w.service_account == "reviews");
  CHECK(w.node == "node2");
  CHECK(w.ips == std::vector<std::string>{"10.244.2.11"});
  CHECK(w.workload_name == "reviews-v2");
  CHECK_FALSE(w.mesh_enabled);

  auto bare = decodeAs<model::Workload>(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: solo}\nspec: {hostNetwork: false}\n");
  CHECK(bare.key == model::ObjectKey{"default", "solo"});
  CHECK(bare.service_account == "default");
  CHECK(bare.workload_name == "solo");
  CHECK(bare.mesh_enabled);

  auto host = decodeAs<model::Workload>(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: h, namespace: kube-system}\n"
      "spec: {hostNetwork: true}\n");
  CHECK_FALSE(host.mesh_enabled);
}

TEST_CASE("namespaces join the mesh only with ferry.dev/mesh=enabled", "[k8s]") {
  CHECK(decodeAs<model::Namespace>(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {ferry.dev/mesh: "
            "enabled}}\n")
            .mesh_enabled);
  CHECK_FALSE(decodeAs<model::Namespace>(
                  "apiVersion: v1\nkind: Namespace\nmetadata: {name: b, labels: {ferry.dev/mesh: "
                  "disabled}}\n")
                  .mesh_enabled);
  CHECK_FALSE(decodeAs<model::Namespace>("apiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n")
                  .mesh_enabled);
}

TEST_CASE("services: named target ports, dual stack and headless", "[k8s]") {
  auto s = decodeAs<model::Service>(R"(
apiVersion: v1
kind: Service
metadata: {name: api, namespace: demo, annotations: {ferry.dev/lb-policy: round-robin}}
spec:
  clusterIP: 10.96.1.1
  clusterIPs: [10.96.1.1, "fd00:96::1:1"]
  ports:
  - {name: grpc, port: 9090, targetPort: grpc-port, appProtocol: kubernetes.io/h2c}
  - {name: metrics, port: 9100}
  selector: {app: api}
)");
  CHECK(s.vips == std::vector<std::string>{"10.96.1.1", "fd00:96::1:1"});
  CHECK(s.ports[0].target_port_name == "grpc-port");
  CHECK(s.ports[0].target_port == 0);
  CHECK(s.ports[0].app_protocol == "kubernetes.io/h2c");
  CHECK(s.ports[1].target_port == 0);
  CHECK(s.hostname() == "api.demo.svc.cluster.local");
  CHECK(s.annotations == model::Labels{{"ferry.dev/lb-policy", "round-robin"}});

  auto headless = decodeAs<model::Service>(
      "apiVersion: v1\nkind: Service\nmetadata: {name: h, namespace: demo}\n"
      "spec: {clusterIP: None, ports: [{port: 80}]}\n");
  CHECK(headless.vips.empty());
}

TEST_CASE("endpoint slices merge per service, absent ready means ready", "[k8s]") {
  LoadResult r;
  r.addText(R"(
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-a, namespace: demo, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- {addresses: [10.244.1.12], nodeName: node1, zone: z1, targetRef: {kind: Pod, name: p, uid: u1}}
- {addresses: [10.244.2.11], conditions: {ready: false, terminating: true}}
ports: [{name: http, port: 8080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-b, namespace: demo, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- {addresses: [10.244.2.11], conditions: {ready: true}}
- {addresses: [10.244.3.11]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: other, namespace: demo, labels: {kubernetes.io/service-name: other}}
addressType: IPv6
endpoints: [{addresses: ["fd00:244::1:11"]}]
)",
            "slices.yaml", {});
  REQUIRE(r.errors.empty());
  auto slices = r.all<EndpointSlice>();
  std::vector<const EndpointSlice*> ptrs;
  for (const auto& s : slices) {
    ptrs.push_back(&s);
  }
  auto eps = mergeEndpointSlices({"demo", "web"}, ptrs);
  REQUIRE(eps.endpoints.size() == 3);
  CHECK(eps.endpoints[0].workload_uid == "u1");
  CHECK(eps.endpoints[0].zone == "z1");
  CHECK(eps.endpoints[1].ip == "10.244.2.11");
  CHECK(eps.endpoints[1].ready);  // ready in web-b
  CHECK(eps.endpoints[2].ready);  // no conditions at all
  CHECK(eps.named_ports == std::map<std::string, uint16_t>{{"http", 8080}});
}

TEST_CASE("lists: kind List and typed lists whose items carry no kind", "[k8s]") {
  auto docs = decodeDocuments(R"(
apiVersion: v1
kind: PodList
metadata: {resourceVersion: "100"}
items:
- metadata: {name: a, namespace: demo}
- metadata: {name: b, namespace: demo}
  spec: {serviceAccountName: 7}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: demo}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}
)",
                              "list.yaml");
  REQUIRE(docs.size() == 4);
  CHECK(docs[0].decoded.ok());
  CHECK(docs[0].source == "list.yaml, document 1, item 0");
  REQUIRE(docs[1].decoded.ok());  // a number is a valid name scalar here
  CHECK(std::get<model::Workload>(docs[1].decoded->object).service_account == "7");
  CHECK(docs[2].decoded.ok());
  CHECK_FALSE(docs[3].decoded.ok());
  CHECK(docs[3].source == "list.yaml, document 2, item 1");
}

TEST_CASE("decodeObjectAs takes the kind from the caller", "[k8s]") {
  auto d =
      decodeObjectAs(Kind::kServiceAccount, YAML::Load("{metadata: {name: sa1, namespace: demo}}"));
  REQUIRE(d.ok());
  CHECK(d->ref.str() == "ServiceAccount demo/sa1");
  auto wrong = decodeObjectAs(Kind::kServiceAccount,
                              YAML::Load("{kind: Pod, metadata: {name: p, namespace: demo}}"));
  CHECK_FALSE(wrong.ok());
}

TEST_CASE("a second object with the same kind and key is an error, the first stays", "[k8s]") {
  LoadResult r;
  r.addText(
      "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {x: '1'}}\n---\n"
      "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {x: '2'}}\n",
      "dup.yaml", {});
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].message ==
        "Namespace a: duplicates the object from dup.yaml, document 1, which keeps its place; this "
        "one is refused");
  REQUIRE(r.objects.size() == 1);
  CHECK(std::get<model::Namespace>(r.objects.begin()->second.object).labels.at("x") == "1");
}

TEST_CASE("HTTPRoute: defaults, Gateway parents ignored, mirror and header modifier", "[k8s]") {
  auto route = decodeAs<model::HttpRoute>(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: demo, annotations: {fault.ferry.dev/delay-ms: "100"}}
spec:
  parentRefs:
  - {name: public-gw}
  - {group: "", kind: Service, name: web, namespace: other}
  hostnames: ["web.demo.svc.cluster.local", "*.example.com"]
  rules:
  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-a, value: "1"}], add: [{name: x-b, value: "2"}],
                              remove: [x-c]}
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 8080}, percent: 25}
    backendRefs: [{name: web-v1, port: 80}]
    timeouts: {request: 1h30m, backendRequest: 10m}
)");
  REQUIRE(route.parent_services.size() == 1);
  CHECK(route.parent_services[0] == model::ObjectKey{"other", "web"});
  CHECK(route.parent_ports[0] == 0);
  CHECK(route.annotations == model::Labels{{"fault.ferry.dev/delay-ms", "100"}});
  const auto& rule = route.rules[0];
  REQUIRE(rule.matches.size() == 1);
  REQUIRE(rule.matches[0].path.has_value());
  CHECK(rule.matches[0].path->type == model::HttpPathMatch::Type::kPathPrefix);
  CHECK(rule.matches[0].path->value == "/");
  CHECK(rule.backends[0].weight == 1);
  CHECK(rule.backends[0].service == model::ObjectKey{"demo", "web-v1"});
  REQUIRE(rule.request_header_modifier.has_value());
  CHECK(rule.request_header_modifier->remove == std::vector<std::string>{"x-c"});
  REQUIRE(rule.mirror.has_value());
  CHECK(rule.mirror->service.name == "shadow");
  CHECK(rule.mirror_numerator == 25);
  CHECK(rule.mirror_denominator == 100);
  CHECK(rule.request_timeout_ms == 5'400'000u);
  CHECK(rule.backend_request_timeout_ms == 600'000u);
  CHECK_FALSE(rule.retry.has_value());
}

TEST_CASE("CR LF and a lone CR are line breaks, as YAML 1.2 reads them", "[k8s]") {
  for (const char* eol : {"\r\n", "\r"}) {
    INFO("line break: " << (eol[1] == '\n' ? "CR LF" : "CR"));
    std::string text =
        absl::StrJoin({"apiVersion: v1", "kind: Namespace", "metadata:", "  name: crlf",
                       "  labels: {ferry.dev/mesh: enabled}", "  annotations:", "    note: |",
                       "      two", "      lines", ""},
                      eol);
    auto ns = decodeAs<model::Namespace>(text);
    CHECK(ns.name == "crlf");
    CHECK(ns.mesh_enabled);
  }
}

TEST_CASE("block scalars and quoted text may hold what looks like flow syntax", "[k8s]") {
  auto ns = decodeAs<model::Namespace>(R"(apiVersion: v1
kind: Namespace
metadata:
  name: tricky
  annotations:
    last-applied: |
      {"a": {},
       "b": [1],
      "c": 2}
      {},
    note: 'it''s {},'
    other: "{}, [],"  # a comment with {},
  labels: {ferry.dev/mesh: enabled}
)");
  CHECK(ns.mesh_enabled);
}

}  // namespace
}  // namespace ferry::k8s
