// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Builders for the routing tests: terse HTTPRoutes and request views.

#include <string>
#include <utility>
#include <vector>

#include "http/request_view.h"
#include "model/model.h"

namespace ferry::routing::testing {

inline model::ObjectKey key(const std::string& ns, const std::string& name) {
  return model::ObjectKey{ns, name};
}

inline model::HttpRouteMatch pathMatch(model::HttpPathMatch::Type type, std::string value) {
  model::HttpRouteMatch m;
  m.path = model::HttpPathMatch{.type = type, .value = std::move(value)};
  return m;
}
inline model::HttpRouteMatch exact(std::string v) {
  return pathMatch(model::HttpPathMatch::Type::kExact, std::move(v));
}
inline model::HttpRouteMatch prefix(std::string v) {
  return pathMatch(model::HttpPathMatch::Type::kPathPrefix, std::move(v));
}
inline model::HttpRouteMatch regex(std::string v) {
  return pathMatch(model::HttpPathMatch::Type::kRegularExpression, std::move(v));
}

// A rule with matches sending everything to one backend service of the same name.
inline model::HttpRouteRule rule(std::vector<model::HttpRouteMatch> matches,
                                 const std::string& backend, uint16_t port = 80) {
  model::HttpRouteRule r;
  r.matches = std::move(matches);
  r.backends.push_back(model::BackendRef{.service = key("shop", backend), .port = port});
  return r;
}

// A route attached to shop/web (all ports unless `port` is set).
inline model::HttpRoute route(const std::string& name, std::vector<model::HttpRouteRule> rules,
                              uint16_t port = 0) {
  model::HttpRoute r;
  r.key = key("shop", name);
  r.parent_services.push_back(key("shop", "web"));
  r.parent_ports.push_back(port);
  r.rules = std::move(rules);
  return r;
}

// A request view whose strings live in the struct.
struct Request {
  std::string method = "GET";
  std::string path = "/";
  std::string query;
  std::vector<std::pair<std::string, std::string>> header_fields;
  std::vector<http::Header> headers;

  http::RequestView view() {
    headers.clear();
    for (const auto& [n, v] : header_fields) {
      headers.push_back(http::Header{n, v});
    }
    http::RequestView v;
    v.method = method;
    v.path = path;
    v.query = query;
    v.headers = headers;
    return v;
  }
};

}  // namespace ferry::routing::testing
