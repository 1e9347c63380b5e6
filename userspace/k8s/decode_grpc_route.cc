// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// gateway.networking.k8s.io/v1 GRPCRoute attached to Services (GAMMA), as the route it means for
// the one route table HTTPRoutes feed (issue 22 point 1). A gRPC call is an HTTP/2 POST to
// "/<service>/<method>", so a method match is a :path match, as in Envoy:
//   Exact, service and method    -> path Exact "/<service>/<method>"
//   Exact, service only          -> path PathPrefix "/<service>" (every method of it)
//   Exact, method only           -> path RegularExpression "/[^/]+/<method>"
//   RegularExpression            -> path RegularExpression "/<service or [^/]+>/<method or
//                                   [^/]+>" (RE2)
// Header matches, backendRefs (weights, per-backend filters) and the rule's filters are
// HTTPRoute's; GRPCRoute allows RequestHeaderModifier, ResponseHeaderModifier and
// RequestMirror filters only. The route's key is "grpc:<name>" so that an HTTPRoute of the same
// name stays a separate route (and metrics say route="grpc:<name>").
#include <re2/re2.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "k8s/decoders.h"
#include "policy/text.h"

namespace ferry::k8s::internal {
namespace {

// GRPCRoute's own patterns for Exact matches: a service is dot-separated identifiers, a method
// one identifier.
bool identifier(std::string_view s) {
  if (s.empty() || absl::ascii_isdigit(static_cast<unsigned char>(s[0]))) {
    return false;
  }
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

bool serviceName(std::string_view s) {
  if (s.starts_with(".")) {
    s.remove_prefix(1);
  }
  for (size_t at = 0;;) {
    const size_t dot = s.find('.', at);
    if (!identifier(s.substr(at, dot == std::string_view::npos ? dot : dot - at))) {
      return false;
    }
    if (dot == std::string_view::npos) {
      return true;
    }
    at = dot + 1;
  }
}

model::HttpPathMatch methodPath(const Field& m) {
  m.allowOnly({"type", "service", "method"});
  const std::string type = m["type"].strOr("Exact");
  const std::string service = m["service"].strOr("");
  const std::string method = m["method"].strOr("");
  if (service.empty() && method.empty()) {
    m.fail("a method match needs a service, a method or both");
  }
  model::HttpPathMatch path;
  if (type == "Exact") {
    if (!service.empty() && !serviceName(service)) {
      m["service"].fail(text::cat("'", service, "' is not a gRPC service name"));
    }
    if (!method.empty() && !identifier(method)) {
      m["method"].fail(text::cat("'", method, "' is not a gRPC method name"));
    }
    if (method.empty()) {
      path.type = model::HttpPathMatch::Type::kPathPrefix;
      path.value = "/" + service;
    } else if (service.empty()) {
      path.type = model::HttpPathMatch::Type::kRegularExpression;
      path.value = "/[^/]+/" + RE2::QuoteMeta(method);
    } else {
      path.type = model::HttpPathMatch::Type::kExact;
      path.value = absl::StrCat("/", service, "/", method);
    }
    return path;
  }
  if (type != "RegularExpression") {
    m["type"].fail(text::cat("'", type, "' is not Exact or RegularExpression"));
  }
  if (!service.empty()) {
    checkRegex(m["service"], service);
  }
  if (!method.empty()) {
    checkRegex(m["method"], method);
  }
  path.type = model::HttpPathMatch::Type::kRegularExpression;
  path.value = absl::StrCat("/(", service.empty() ? "[^/]+" : service, ")/(",
                            method.empty() ? "[^/]+" : method, ")");
  return path;
}

model::HttpRouteMatch decodeGrpcMatch(const Field& f) {
  f.allowOnly({"method", "headers"});
  model::HttpRouteMatch m;
  if (f["method"].present()) {
    m.path = methodPath(f["method"]);
  }
  for (const auto& h : f["headers"].list()) {
    m.headers.push_back(decodeHeaderMatch(h));
  }
  return m;
}

void checkFilters(const Field& filters) {
  for (const auto& filter : filters.list()) {
    const std::string type = filter["type"].strOr("");
    if (type != "RequestHeaderModifier" && type != "ResponseHeaderModifier" &&
        type != "RequestMirror") {
      filter["type"].fail(text::cat("'", type,
                                    "' is not a GRPCRoute filter Ferry applies "
                                    "(RequestHeaderModifier, ResponseHeaderModifier, "
                                    "RequestMirror)"));
    }
  }
}

}  // namespace

model::HttpRoute decodeGrpcRoute(const Field& root, const Meta& meta) {
  for (const auto& rule : root["spec"]["rules"].list()) {
    rule.allowOnly({"name", "matches", "filters", "backendRefs", "sessionPersistence"});
    checkFilters(rule["filters"]);
    for (const auto& backend : rule["backendRefs"].list()) {
      checkFilters(backend["filters"]);
    }
  }
  model::HttpRoute route = decodeRouteWith(root, meta, &decodeGrpcMatch);
  route.key.name = "grpc:" + route.key.name;
  return route;
}

}  // namespace ferry::k8s::internal
