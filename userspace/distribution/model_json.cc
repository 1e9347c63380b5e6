// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "distribution/model_json.h"

namespace ferry::model {
namespace {

template <typename T>
void putOptional(nlohmann::json& j, const char* name, const std::optional<T>& value) {
  if (value.has_value()) {
    j[name] = *value;
  }
}

template <typename T>
void getOptional(const nlohmann::json& j, const char* name, std::optional<T>& value) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    value.reset();
  } else {
    value = it->get<T>();
  }
}

template <typename T>
void getOr(const nlohmann::json& j, const char* name, T& value) {
  auto it = j.find(name);
  if (it != j.end()) {
    value = it->get<T>();
  }
}

}  // namespace

void to_json(nlohmann::json& j, const AuthorizationPolicy& v) {
  j = nlohmann::json{{"key", v.key},         {"action", v.action},
                     {"rules", v.rules},     {"root_namespace", v.root_namespace},
                     {"dry_run", v.dry_run}, {"refused", v.refused}};
  putOptional(j, "selector", v.selector);
}

void from_json(const nlohmann::json& j, AuthorizationPolicy& v) {
  v = AuthorizationPolicy{};
  getOr(j, "key", v.key);
  getOr(j, "action", v.action);
  getOr(j, "rules", v.rules);
  getOr(j, "root_namespace", v.root_namespace);
  getOr(j, "dry_run", v.dry_run);
  getOr(j, "refused", v.refused);
  getOptional(j, "selector", v.selector);
}

void to_json(nlohmann::json& j, const PeerAuthentication& v) {
  j = nlohmann::json{{"key", v.key}, {"mode", v.mode}, {"port_modes", v.port_modes}};
  putOptional(j, "selector", v.selector);
}

void from_json(const nlohmann::json& j, PeerAuthentication& v) {
  v = PeerAuthentication{};
  getOr(j, "key", v.key);
  getOr(j, "mode", v.mode);
  getOr(j, "port_modes", v.port_modes);
  getOptional(j, "selector", v.selector);
}

void to_json(nlohmann::json& j, const RateLimitPolicy& v) {
  j = nlohmann::json{
      {"key", v.key},     {"target_service", v.target_service}, {"service_port", v.service_port},
      {"ports", v.ports}, {"overrides", v.overrides},           {"refused", v.refused}};
  putOptional(j, "selector", v.selector);
  putOptional(j, "total", v.total);
  putOptional(j, "identity", v.identity);
}

void from_json(const nlohmann::json& j, RateLimitPolicy& v) {
  v = RateLimitPolicy{};
  getOr(j, "key", v.key);
  getOr(j, "target_service", v.target_service);
  getOr(j, "service_port", v.service_port);
  getOr(j, "ports", v.ports);
  getOr(j, "overrides", v.overrides);
  getOr(j, "refused", v.refused);
  getOptional(j, "selector", v.selector);
  getOptional(j, "total", v.total);
  getOptional(j, "identity", v.identity);
}

void to_json(nlohmann::json& j, const RequestAuthentication& v) {
  j = nlohmann::json{{"key", v.key}, {"jwt_rules", v.jwt_rules}};
  putOptional(j, "selector", v.selector);
}

void from_json(const nlohmann::json& j, RequestAuthentication& v) {
  v = RequestAuthentication{};
  getOr(j, "key", v.key);
  getOr(j, "jwt_rules", v.jwt_rules);
  getOptional(j, "selector", v.selector);
}

void to_json(nlohmann::json& j, const HttpRouteMatch& v) {
  j = nlohmann::json{{"headers", v.headers}, {"query_params", v.query_params}};
  putOptional(j, "path", v.path);
  putOptional(j, "method", v.method);
}

void from_json(const nlohmann::json& j, HttpRouteMatch& v) {
  v = HttpRouteMatch{};
  getOr(j, "headers", v.headers);
  getOr(j, "query_params", v.query_params);
  getOptional(j, "path", v.path);
  getOptional(j, "method", v.method);
}

void to_json(nlohmann::json& j, const HttpUrlRewrite& v) {
  j = nlohmann::json{{"hostname", v.hostname}};
  putOptional(j, "path", v.path);
}

void from_json(const nlohmann::json& j, HttpUrlRewrite& v) {
  v = HttpUrlRewrite{};
  getOr(j, "hostname", v.hostname);
  getOptional(j, "path", v.path);
}

void to_json(nlohmann::json& j, const HttpRequestRedirect& v) {
  j = nlohmann::json{{"scheme", v.scheme},
                     {"hostname", v.hostname},
                     {"port", v.port},
                     {"status_code", v.status_code}};
  putOptional(j, "path", v.path);
}

void from_json(const nlohmann::json& j, HttpRequestRedirect& v) {
  v = HttpRequestRedirect{};
  getOr(j, "scheme", v.scheme);
  getOr(j, "hostname", v.hostname);
  getOr(j, "port", v.port);
  getOr(j, "status_code", v.status_code);
  getOptional(j, "path", v.path);
}

void to_json(nlohmann::json& j, const BackendFilters& v) {
  j = nlohmann::json::object();
  putOptional(j, "request_header_modifier", v.request_header_modifier);
  putOptional(j, "response_header_modifier", v.response_header_modifier);
  putOptional(j, "rewrite", v.rewrite);
}

void from_json(const nlohmann::json& j, BackendFilters& v) {
  v = BackendFilters{};
  getOptional(j, "request_header_modifier", v.request_header_modifier);
  getOptional(j, "response_header_modifier", v.response_header_modifier);
  getOptional(j, "rewrite", v.rewrite);
}

void to_json(nlohmann::json& j, const HttpRouteRule& v) {
  j = nlohmann::json{{"matches", v.matches},
                     {"backends", v.backends},
                     {"mirror_numerator", v.mirror_numerator},
                     {"mirror_denominator", v.mirror_denominator}};
  putOptional(j, "request_header_modifier", v.request_header_modifier);
  putOptional(j, "response_header_modifier", v.response_header_modifier);
  putOptional(j, "redirect", v.redirect);
  putOptional(j, "rewrite", v.rewrite);
  putOptional(j, "request_timeout_ms", v.request_timeout_ms);
  putOptional(j, "backend_request_timeout_ms", v.backend_request_timeout_ms);
  putOptional(j, "retry", v.retry);
  putOptional(j, "mirror", v.mirror);
}

void from_json(const nlohmann::json& j, HttpRouteRule& v) {
  v = HttpRouteRule{};
  getOr(j, "matches", v.matches);
  getOr(j, "backends", v.backends);
  getOptional(j, "request_header_modifier", v.request_header_modifier);
  getOptional(j, "response_header_modifier", v.response_header_modifier);
  getOptional(j, "redirect", v.redirect);
  getOptional(j, "rewrite", v.rewrite);
  getOptional(j, "request_timeout_ms", v.request_timeout_ms);
  getOptional(j, "backend_request_timeout_ms", v.backend_request_timeout_ms);
  getOptional(j, "retry", v.retry);
  getOptional(j, "mirror", v.mirror);
  getOr(j, "mirror_percent", v.mirror_numerator);  // what a controller before issue 21 sends
  getOr(j, "mirror_numerator", v.mirror_numerator);
  getOr(j, "mirror_denominator", v.mirror_denominator);
}

void to_json(nlohmann::json& j, const HttpRoute& v) {
  j = nlohmann::json{{"key", v.key},
                     {"parent_services", v.parent_services},
                     {"parent_ports", v.parent_ports},
                     {"rules", v.rules},
                     {"annotations", v.annotations}};
}

void from_json(const nlohmann::json& j, HttpRoute& v) {
  v = HttpRoute{};
  getOr(j, "key", v.key);
  getOr(j, "parent_services", v.parent_services);
  getOr(j, "parent_ports", v.parent_ports);
  getOr(j, "rules", v.rules);
  getOr(j, "annotations", v.annotations);
}

}  // namespace ferry::model
