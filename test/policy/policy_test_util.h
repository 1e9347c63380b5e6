// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Helpers for policy tests: policies written as manifests (through the real decoder) and
// requests described by value.

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "k8s/loader.h"
#include "policy/engine.h"

namespace ferry::policy::testing {

// One AuthorizationPolicy document. `rules` is the YAML flow list of rules, `selector` a flow
// map of labels ("" for none).
inline std::string ap(const std::string& name, const std::string& action, const std::string& rules,
                      const std::string& selector = "{app: web}", const std::string& ns = "demo") {
  std::string doc =
      "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
      "metadata: {name: " +
      name + ", namespace: " + ns + "}\nspec:\n  action: " + action + "\n";
  if (!selector.empty()) {
    doc += "  selector: {matchLabels: " + selector + "}\n";
  }
  if (!rules.empty()) {
    doc += "  rules: " + rules + "\n";
  }
  return doc + "---\n";
}

inline std::shared_ptr<const PolicySnapshot> snapshotOf(const std::string& manifests) {
  k8s::LoadResult r;
  r.addText(manifests, "test.yaml", k8s::DecodeOptions{});
  for (const auto& e : r.errors) {
    FAIL("policy manifest refused: " << e.message);
  }
  auto snapshot = PolicySnapshot::build(r.all<model::AuthorizationPolicy>());
  REQUIRE(snapshot->errors().empty());
  return snapshot;
}

// A request by value; toRequest() gives the engine's view of it.
struct Req {
  std::string principal;  // full SPIFFE ID or "" (plaintext)
  std::string src = "10.244.1.11";
  std::string dst = "10.244.1.12";
  uint16_t port = 8080;
  bool http = true;
  std::string method = "GET";
  std::string path = "/";
  std::string host = "web.demo.svc.cluster.local";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string sni;
  bool tunnel = false;  // HttpRequest::tunnel: CONNECT or a non-WebSocket upgrade
  // A verified JWT (request.auth.*); absent: the request carried none.
  struct Jwt {
    std::string principal, presenter;
    std::vector<std::string> audiences;
    std::vector<std::pair<std::string, std::string>> claims;  // RequestAuth::claims paths
  };
  std::optional<Jwt> jwt;
};

// The engine's Request views strings it does not own; the built request keeps its own copy of
// the Req, so build(Req{...}) with a temporary is safe.
struct BuiltRequest {
  Req owned;
  HttpRequest http;
  RequestAuth auth;
  Request request;
};

inline std::unique_ptr<BuiltRequest> build(const Req& by_value) {
  auto b = std::make_unique<BuiltRequest>();
  b->owned = by_value;
  const Req& r = b->owned;
  b->http.method = r.method;
  b->http.path = r.path;
  b->http.host = r.host;
  b->http.tunnel = r.tunnel;
  for (const auto& [k, v] : r.headers) {
    b->http.headers.emplace_back(k, v);
  }
  b->request.source_principal = r.principal;
  b->request.source_ip = net::IpAddress::parse(r.src);
  b->request.destination_ip = net::IpAddress::parse(r.dst);
  b->request.destination_port = r.port;
  b->request.sni = r.sni;
  b->request.http = r.http ? &b->http : nullptr;
  if (r.jwt) {
    b->auth.principal = r.jwt->principal;
    b->auth.presenter = r.jwt->presenter;
    b->auth.audiences.assign(r.jwt->audiences.begin(), r.jwt->audiences.end());
    for (const auto& [k, v] : r.jwt->claims) {
      b->auth.claims.emplace_back(k, v);
    }
    b->request.auth = &b->auth;
  }
  return b;
}

inline const std::string kClient = "spiffe://cluster.local/ns/demo/sa/client";
inline const std::string kWebSa = "spiffe://cluster.local/ns/demo/sa/web";
inline const std::string kAdmin = "spiffe://cluster.local/ns/ops/sa/admin";

}  // namespace ferry::policy::testing
