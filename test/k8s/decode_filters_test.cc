// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// HTTPRoute filters of Gateway API's standard channel (issue 22 point 2): RequestRedirect,
// URLRewrite, ResponseHeaderModifier and backendRefs[].filters, what decodes and what is
// refused (the spec's CEL rules and Ferry's documented limits), each refusal with its reason.
#include <catch2/catch.hpp>
#include <string>

#include "k8s/decode.h"

namespace ferry::k8s {
namespace {

using Catch::Matchers::Contains;
using PathType = model::HttpPathModifier::Type;

// One rule: `matches` and `rest` are YAML flow text ("" = none).
std::string routeRule(const std::string& rule) {
  return "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
         "metadata: {name: f, namespace: demo}\nspec:\n"
         "  parentRefs: [{group: \"\", kind: Service, name: web, port: 80}]\n"
         "  rules:\n  - " +
         rule + "\n";
}

std::string filterRule(const std::string& filters, bool backends = true,
                       const std::string& matches = "[{path: {type: PathPrefix, value: /a}}]") {
  return routeRule("{matches: " + matches + ", filters: [" + filters + "]" +
                   (backends ? ", backendRefs: [{name: web-v1, port: 80}]" : "") + "}");
}

model::HttpRouteRule decodeOne(const std::string& manifest) {
  auto d = decodeObjectText(manifest, DecodeOptions{});
  INFO((d.ok() ? std::string("ok") : std::string(d.status().message())));
  REQUIRE(d.ok());
  const auto& route = std::get<model::HttpRoute>(d->object);
  REQUIRE(route.rules.size() == 1);
  return route.rules[0];
}

TEST_CASE("RequestRedirect decodes every field with the spec's defaults", "[k8s][filters]") {
  struct Row {
    const char* redirect;
    const char* scheme;
    const char* hostname;
    uint16_t port, status;
    std::optional<model::HttpPathModifier> path;
  };
  const Row rows[] = {
      {"{}", "", "", 0, 302, std::nullopt},
      {"{hostname: example.org}", "", "example.org", 0, 302, std::nullopt},
      {"{scheme: https}", "https", "", 0, 302, std::nullopt},
      {"{scheme: http, port: 8080, statusCode: 301}", "http", "", 8080, 301, std::nullopt},
      {"{statusCode: 303}", "", "", 0, 303, std::nullopt},
      {"{statusCode: 307}", "", "", 0, 307, std::nullopt},
      {"{statusCode: 308}", "", "", 0, 308, std::nullopt},
      {"{path: {type: ReplaceFullPath, replaceFullPath: /full}}", "", "", 0, 302,
       model::HttpPathModifier{PathType::kReplaceFullPath, "/full"}},
      {"{path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}", "", "", 0, 302,
       model::HttpPathModifier{PathType::kReplacePrefixMatch, "/b"}},
      {"{path: {type: ReplacePrefixMatch, replacePrefixMatch: \"\"}}", "", "", 0, 302,
       model::HttpPathModifier{PathType::kReplacePrefixMatch, ""}},
  };
  for (const Row& row : rows) {
    INFO(row.redirect);
    model::HttpRouteRule rule = decodeOne(filterRule(
        std::string("{type: RequestRedirect, requestRedirect: ") + row.redirect + "}", false));
    REQUIRE(rule.redirect.has_value());
    CHECK(rule.redirect->scheme == row.scheme);
    CHECK(rule.redirect->hostname == row.hostname);
    CHECK(rule.redirect->port == row.port);
    CHECK(rule.redirect->status_code == row.status);
    REQUIRE(rule.redirect->path.has_value() == row.path.has_value());
    if (row.path) {
      CHECK(rule.redirect->path->type == row.path->type);
      CHECK(rule.redirect->path->value == row.path->value);
    }
    CHECK(rule.backends.empty());
  }
}

TEST_CASE("URLRewrite, ResponseHeaderModifier and per-backend filters decode", "[k8s][filters]") {
  SECTION("URLRewrite hostname and prefix") {
    model::HttpRouteRule rule = decodeOne(
        filterRule("{type: URLRewrite, urlRewrite: {hostname: one.example.org, path: {type: "
                   "ReplacePrefixMatch, replacePrefixMatch: /one}}}"));
    REQUIRE(rule.rewrite.has_value());
    CHECK(rule.rewrite->hostname == "one.example.org");
    REQUIRE(rule.rewrite->path.has_value());
    CHECK(rule.rewrite->path->type == PathType::kReplacePrefixMatch);
    CHECK(rule.rewrite->path->value == "/one");
  }
  SECTION("URLRewrite full path, no hostname") {
    model::HttpRouteRule rule = decodeOne(filterRule(
        "{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /one}}}"));
    REQUIRE(rule.rewrite.has_value());
    CHECK(rule.rewrite->hostname.empty());
    CHECK(rule.rewrite->path->type == PathType::kReplaceFullPath);
  }
  SECTION("ReplacePrefixMatch on a rule without matches (the default match is PathPrefix /)") {
    model::HttpRouteRule rule = decodeOne(
        routeRule("{filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, "
                  "replacePrefixMatch: /v2}}}], backendRefs: [{name: web-v1, port: 80}]}"));
    REQUIRE(rule.rewrite.has_value());
  }
  SECTION("ResponseHeaderModifier set, add, remove") {
    model::HttpRouteRule rule = decodeOne(
        filterRule("{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Set, "
                   "value: s}], add: [{name: X-Add, value: a}], remove: [X-Remove]}}"));
    REQUIRE(rule.response_header_modifier.has_value());
    CHECK(rule.response_header_modifier->set ==
          std::vector<std::pair<std::string, std::string>>{{"X-Set", "s"}});
    CHECK(rule.response_header_modifier->add ==
          std::vector<std::pair<std::string, std::string>>{{"X-Add", "a"}});
    CHECK(rule.response_header_modifier->remove == std::vector<std::string>{"X-Remove"});
    CHECK_FALSE(rule.request_header_modifier.has_value());
  }
  SECTION("backendRefs[].filters belong to their backend only") {
    model::HttpRouteRule rule = decodeOne(routeRule(
        "{matches: [{path: {value: /a}}], backendRefs: ["
        "{name: web-v1, port: 80, filters: [{type: RequestHeaderModifier, requestHeaderModifier: "
        "{add: [{name: x-backend, value: v1}]}}, {type: ResponseHeaderModifier, "
        "responseHeaderModifier: {set: [{name: x-served-by, value: v1}]}}]}, "
        "{name: web-v2, port: 80, filters: [{type: URLRewrite, urlRewrite: {path: {type: "
        "ReplacePrefixMatch, replacePrefixMatch: /v2}}}]}]}"));
    REQUIRE(rule.backends.size() == 2);
    const model::BackendFilters& v1 = rule.backends[0].filters;
    const model::BackendFilters& v2 = rule.backends[1].filters;
    REQUIRE(v1.request_header_modifier.has_value());
    CHECK(v1.request_header_modifier->add[0].first == "x-backend");
    REQUIRE(v1.response_header_modifier.has_value());
    CHECK_FALSE(v1.rewrite.has_value());
    CHECK_FALSE(v2.request_header_modifier.has_value());
    REQUIRE(v2.rewrite.has_value());
    CHECK(v2.rewrite->path->value == "/v2");
    CHECK_FALSE(rule.request_header_modifier.has_value());
  }
}

TEST_CASE("invalid filter combinations and values are refused with their reason",
          "[k8s][filters]") {
  struct Row {
    const char* description;
    std::string manifest;
    const char* reason;  // the message contains this
  };
  const std::string redirect = "{type: RequestRedirect, requestRedirect: {hostname: example.org}}";
  const std::string rewrite =
      "{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /x}}}";
  const std::string prefix_rewrite =
      "{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /x}}}";
  const std::string prefix_redirect =
      "{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, "
      "replacePrefixMatch: /x}}}";
  const Row rows[] = {
      {"RequestRedirect with backendRefs (spec: a redirect rule has no backends)",
       filterRule(redirect, true), "backendRefs: not allowed with a RequestRedirect filter"},
      {"RequestRedirect and URLRewrite in one rule", filterRule(redirect + ", " + rewrite, false),
       "RequestRedirect and URLRewrite may not be combined"},
      {"two RequestRedirect filters", filterRule(redirect + ", " + redirect, false),
       "only one RequestRedirect filter is allowed per rule"},
      {"two URLRewrite filters", filterRule(rewrite + ", " + rewrite),
       "only one URLRewrite filter is allowed per rule"},
      {"two ResponseHeaderModifier filters",
       filterRule("{type: ResponseHeaderModifier, responseHeaderModifier: {remove: [a]}}, "
                  "{type: ResponseHeaderModifier, responseHeaderModifier: {remove: [b]}}"),
       "only one ResponseHeaderModifier filter is allowed per rule"},
      {"two RequestHeaderModifier filters on one backend",
       routeRule("{backendRefs: [{name: web-v1, port: 80, filters: [{type: "
                 "RequestHeaderModifier, requestHeaderModifier: {remove: [a]}}, {type: "
                 "RequestHeaderModifier, requestHeaderModifier: {remove: [b]}}]}]}"),
       "only one RequestHeaderModifier filter is allowed per backendRef"},
      {"ReplacePrefixMatch (rewrite) with an Exact match",
       filterRule(prefix_rewrite, true, "[{path: {type: Exact, value: /a}}]"),
       "ReplacePrefixMatch needs the rule's match to be of type PathPrefix"},
      {"ReplacePrefixMatch (redirect) with a RegularExpression match",
       filterRule(prefix_redirect, false, "[{path: {type: RegularExpression, value: /a.*}}]"),
       "requestRedirect.path: ReplacePrefixMatch needs the rule's match to be of type PathPrefix"},
      {"ReplacePrefixMatch with two matches",
       filterRule(prefix_rewrite, true, "[{path: {value: /a}}, {path: {value: /b}}]"),
       "ReplacePrefixMatch needs exactly one match in the rule (it has 2)"},
      {"per-backend ReplacePrefixMatch with an Exact match",
       routeRule("{matches: [{path: {type: Exact, value: /a}}], backendRefs: [{name: web-v1, "
                 "port: 80, filters: [" +
                 prefix_rewrite + "]}]}"),
       "backendRefs[0].filters[0].urlRewrite.path: ReplacePrefixMatch needs"},
      {"ReplaceFullPath type with replacePrefixMatch set",
       filterRule("{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, "
                  "replacePrefixMatch: /x}}}"),
       "replacePrefixMatch: not allowed with type ReplaceFullPath"},
      {"ReplacePrefixMatch type without its value",
       filterRule("{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch}}}"),
       "replacePrefixMatch: required with type ReplacePrefixMatch"},
      {"unknown path modifier type",
       filterRule("{type: URLRewrite, urlRewrite: {path: {type: Regex, replaceFullPath: /x}}}"),
       "'Regex' is not ReplaceFullPath or ReplacePrefixMatch"},
      {"full path not starting with /",
       filterRule("{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, "
                  "replaceFullPath: x}}}"),
       "'x' must start with '/'"},
      {"full path with a query",
       filterRule("{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, "
                  "replaceFullPath: \"/x?y=1\"}}}"),
       "may not hold '#', '?'"},
      {"redirect status 304",
       filterRule("{type: RequestRedirect, requestRedirect: {statusCode: "
                  "304}}",
                  false),
       "304 is not 301, 302, 303, 307 or 308"},
      {"redirect scheme ftp",
       filterRule("{type: RequestRedirect, requestRedirect: {scheme: ftp}}", false),
       "'ftp' is not http or https"},
      {"redirect wildcard hostname",
       filterRule("{type: RequestRedirect, requestRedirect: {hostname: \"*.example.org\"}}", false),
       "requestRedirect.hostname"},
      {"redirect port 0", filterRule("{type: RequestRedirect, requestRedirect: {port: 0}}", false),
       "requestRedirect.port: 0 is out of range"},
      {"rewrite hostname with a port",
       filterRule("{type: URLRewrite, urlRewrite: {hostname: \"web:8080\"}}"),
       "urlRewrite.hostname"},
      {"RequestRedirect and RequestMirror (Ferry does not mirror redirected requests)",
       filterRule(
           redirect + ", {type: RequestMirror, requestMirror: {backendRef: {name: s, port: 80}}}",
           false),
       "RequestRedirect and RequestMirror may not share a rule"},
      {"RequestRedirect per backend",
       routeRule("{backendRefs: [{name: web-v1, port: 80, filters: [" + redirect + "]}]}"),
       "RequestRedirect is not supported per backend by Ferry"},
      {"RequestMirror per backend",
       routeRule("{backendRefs: [{name: web-v1, port: 80, filters: [{type: RequestMirror, "
                 "requestMirror: {backendRef: {name: s, port: 80}}}]}]}"),
       "RequestMirror is not supported per backend by Ferry"},
      {"URLRewrite on the rule and on a backend",
       routeRule("{filters: [" + rewrite + "], backendRefs: [{name: web-v1, port: 80, filters: [" +
                 rewrite + "]}]}"),
       "Ferry applies one URLRewrite per request"},
      {"CORS (not in Gateway API v1.0's standard channel)",
       filterRule("{type: CORS, cors: {allowOrigins: [\"*\"]}}"),
       "CORS is not in the standard channel of Gateway API v1.0"},
      {"ExtensionRef",
       filterRule("{type: ExtensionRef, extensionRef: {group: x, kind: Y, name: z}}"),
       "ExtensionRef names an implementation-specific filter"},
      {"header listed twice in set (names are case-insensitive keys)",
       filterRule("{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-A, "
                  "value: 1}, {name: x-a, value: 2}]}}"),
       "header 'x-a' is listed twice"},
      {"response header without a value",
       filterRule("{type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: X-A}]}}"),
       "responseHeaderModifier.add[0].value: required field is missing"},
      {"bad response header name",
       filterRule("{type: ResponseHeaderModifier, responseHeaderModifier: {remove: [\"a b\"]}}"),
       "'a b' is not a valid HTTP header name"},
      {"responseHeaderModifier under another type",
       filterRule("{type: URLRewrite, urlRewrite: {hostname: a}, responseHeaderModifier: {}}"),
       "responseHeaderModifier: not allowed with type URLRewrite"},
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
