// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Per-request decisions of Gateway API filters (issue 22 point 2), conformance style: each row
// is an HTTPRoute as a user writes it (decoded by the same decoder the controller uses), a
// request, and what the source agent must do: the redirect's status and Location, the path and
// Host forwarded, the header edits both ways, for the backend chosen.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "k8s/decode.h"
#include "routing/filters.h"
#include "routing/route_table.h"
#include "routing_test_util.h"

namespace ferry::routing {
namespace {

using testing::Request;

// A route on shop/web:`port` with one rule (YAML flow text).
std::shared_ptr<const RouteTable> tableWith(const std::string& rule, uint16_t port = 80) {
  const std::string manifest =
      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
      "metadata: {name: r, namespace: shop}\nspec:\n"
      "  parentRefs: [{group: \"\", kind: Service, name: web, port: " +
      std::to_string(port) + "}]\n  rules:\n  - " + rule + "\n";
  auto decoded = k8s::decodeObjectText(manifest, k8s::DecodeOptions{});
  INFO((decoded.ok() ? std::string("ok") : std::string(decoded.status().message())));
  REQUIRE(decoded.ok());
  model::NodeSnapshot view;
  view.routes.push_back(std::get<model::HttpRoute>(decoded->object));
  std::vector<std::string> errors;
  auto table = RouteTable::build(view, &errors);
  REQUIRE(errors.empty());
  return table;
}

const CompiledRule* matchPath(const RouteTable& table, const std::string& path,
                              uint16_t port = 80) {
  Request request;
  request.path = path;
  return table.match(model::ObjectKey{"shop", "web"}, port, request.view());
}

TEST_CASE("ReplacePrefixMatch follows the spec's table", "[routing][filters]") {
  struct Row {
    const char *path, *prefix, *replacement, *expected;
  };
  const Row rows[] = {
      // The table in the HTTPPathModifier documentation.
      {"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
      {"/foo/bar", "/foo", "/xyz/", "/xyz/bar"},
      {"/foo/bar", "/foo/", "/xyz", "/xyz/bar"},
      {"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
      {"/foo", "/foo", "/xyz", "/xyz"},
      {"/foo/", "/foo", "/xyz", "/xyz/"},
      {"/foo/bar", "/foo", "", "/bar"},
      {"/foo/", "/foo", "", "/"},
      {"/foo", "/foo", "", "/"},
      {"/foo/", "/foo", "/", "/"},
      {"/foo", "/foo", "/", "/"},
      // The catch-all prefix, and deeper paths.
      {"/bar", "/", "/xyz", "/xyz/bar"},
      {"/", "/", "/xyz", "/xyz/"},
      {"/a/b/c", "/a/b", "/z", "/z/c"},
      {"/prefix/one/two", "/prefix/one", "/one", "/one/two"},
      {"/strip-prefix/three", "/strip-prefix", "/", "/three"},
  };
  for (const Row& row : rows) {
    INFO(row.path << " prefix " << row.prefix << " replacement '" << row.replacement << "'");
    PathRewrite rewrite(model::HttpPathModifier{model::HttpPathModifier::Type::kReplacePrefixMatch,
                                                row.replacement},
                        row.prefix);
    CHECK(rewrite.apply(row.path) == row.expected);
  }
}

TEST_CASE("RequestRedirect: status and Location", "[routing][filters]") {
  struct Row {
    const char* description;
    std::string redirect;  // requestRedirect: {...}
    const char* match;     // the rule's path prefix
    uint16_t port;         // the Service port the request came to
    const char* authority;
    const char* path;
    const char* query;  // nullptr: no query
    int status;
    const char* location;
  };
  const Row rows[] = {
      {"hostname only", "{hostname: example.org}", "/", 80, "web", "/hostname-redirect", nullptr,
       302, "http://example.org/hostname-redirect"},
      {"status 301", "{hostname: example.org, statusCode: 301}", "/", 80, "web", "/s", nullptr, 301,
       "http://example.org/s"},
      {"status 303", "{statusCode: 303}", "/", 80, "web", "/s", nullptr, 303, "http://web/s"},
      {"status 307", "{statusCode: 307}", "/", 80, "web", "/s", nullptr, 307, "http://web/s"},
      {"status 308", "{statusCode: 308}", "/", 80, "web", "/s", nullptr, 308, "http://web/s"},
      {"scheme https: port 443 implied and left out", "{scheme: https}", "/", 80, "web", "/x",
       nullptr, 302, "https://web/x"},
      {"scheme https, port 8443", "{scheme: https, port: 8443}", "/", 80, "web", "/x", nullptr, 302,
       "https://web:8443/x"},
      {"scheme https, port 443", "{scheme: https, port: 443}", "/", 80, "web", "/x", nullptr, 302,
       "https://web/x"},
      {"scheme http on a Service port 8080: port 80 implied", "{scheme: http}", "/", 8080,
       "web:8080", "/x", nullptr, 302, "http://web/x"},
      {"no scheme, no port: the Service port", "{hostname: example.org}", "/", 8080, "web:8080",
       "/x", nullptr, 302, "http://example.org:8080/x"},
      {"no scheme, port 443 on http", "{port: 443}", "/", 80, "web", "/x", nullptr, 302,
       "http://web:443/x"},
      {"port 80 left out", "{port: 80}", "/", 8080, "web:8080", "/x", nullptr, 302, "http://web/x"},
      {"query kept", "{hostname: example.org}", "/", 80, "web", "/x", "a=1&b=2", 302,
       "http://example.org/x?a=1&b=2"},
      {"full path", "{path: {type: ReplaceFullPath, replaceFullPath: /full-path-replacement}}",
       "/full", 80, "web", "/full/path/original", nullptr, 302, "http://web/full-path-replacement"},
      {"prefix", "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}",
       "/original-prefix", 80, "web", "/original-prefix/lemon", nullptr, 302,
       "http://web/replacement-prefix/lemon"},
      {"prefix, path and host and status together",
       "{hostname: example.org, statusCode: 301, path: {type: ReplacePrefixMatch, "
       "replacePrefixMatch: /replacement-prefix}}",
       "/path-and-host", 80, "web", "/path-and-host/x", "q=1", 301,
       "http://example.org/replacement-prefix/x?q=1"},
      {"IPv6 literal authority", "{statusCode: 302}", "/", 80, "[fd00::1]", "/x", nullptr, 302,
       "http://[fd00::1]/x"},
      {"authority port replaced by the scheme's", "{scheme: https}", "/", 8080, "[fd00::1]:8080",
       "/x", nullptr, 302, "https://[fd00::1]/x"},
  };
  for (const Row& row : rows) {
    INFO(row.description);
    auto table = tableWith(std::string("{matches: [{path: {type: PathPrefix, value: ") + row.match +
                               "}}], filters: [{type: RequestRedirect, "
                               "requestRedirect: " +
                               row.redirect + "}]}",
                           row.port);
    const CompiledRule* rule = matchPath(*table, row.path, row.port);
    REQUIRE(rule != nullptr);
    REQUIRE(rule->redirect() != nullptr);
    CHECK(rule->backends().empty());
    CHECK(rule->redirect()->status() == row.status);
    RedirectRequest request{.authority = row.authority,
                            .listener_port = row.port,
                            .path = row.path,
                            .query = row.query ? row.query : "",
                            .has_query = row.query != nullptr};
    CHECK(rule->redirect()->location(request) == row.location);
  }
}

TEST_CASE("URLRewrite: the path and Host forwarded", "[routing][filters]") {
  struct Row {
    const char* description;
    std::string rewrite;  // urlRewrite: {...}
    const char* match;
    const char* path;
    const char* forwarded_path;
    const char* host;  // "" = unchanged
  };
  const Row rows[] = {
      {"prefix", "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /one}}", "/prefix/one",
       "/prefix/one/two", "/one/two", ""},
      {"prefix, exact prefix request",
       "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /one}}", "/prefix/one", "/prefix/one",
       "/one", ""},
      {"prefix, trailing slash kept",
       "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /one}}", "/prefix/one",
       "/prefix/one/", "/one/", ""},
      {"strip a prefix", "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}",
       "/strip-prefix", "/strip-prefix/three", "/three", ""},
      {"strip a prefix, nothing left", "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}",
       "/strip-prefix", "/strip-prefix", "/", ""},
      {"full path", "{path: {type: ReplaceFullPath, replaceFullPath: /one}}", "/full/one",
       "/full/one/two", "/one", ""},
      {"hostname only", "{hostname: one.example.org}", "/", "/rewrite", "/rewrite",
       "one.example.org"},
      {"hostname and full path",
       "{hostname: two.example.org, path: {type: ReplaceFullPath, replaceFullPath: /test}}",
       "/full/rewrite-path-and-host", "/full/rewrite-path-and-host/x", "/test", "two.example.org"},
  };
  for (const Row& row : rows) {
    INFO(row.description);
    auto table = tableWith(std::string("{matches: [{path: {type: PathPrefix, value: ") + row.match +
                           "}}], filters: [{type: URLRewrite, urlRewrite: " + row.rewrite +
                           "}], backendRefs: [{name: web-v1, port: 80}]}");
    const CompiledRule* rule = matchPath(*table, row.path);
    REQUIRE(rule != nullptr);
    CHECK(rule->redirect() == nullptr);
    ForwardEdits edits = rule->forwardEdits(rule->backends()[0], row.path);
    CHECK(edits.path == row.forwarded_path);
    CHECK(edits.host == row.host);
  }
}

TEST_CASE("header modifiers both ways, and per-backend filters only for their backend",
          "[routing][filters]") {
  auto table = tableWith(
      "{matches: [{path: {value: /api}}], "
      "filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-rule, "
      "value: r}]}}, {type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: "
      "X-Header-Set, value: set-overwrites-values}], add: [{name: X-Header-Add, value: "
      "header-val-1}], remove: [X-Header-Remove]}}], "
      "backendRefs: ["
      "{name: web-v1, port: 80, filters: [{type: RequestHeaderModifier, requestHeaderModifier: "
      "{add: [{name: x-backend, value: v1}]}}, {type: ResponseHeaderModifier, "
      "responseHeaderModifier: {set: [{name: x-served-by, value: v1}]}}]}, "
      "{name: web-v2, port: 80, filters: [{type: URLRewrite, urlRewrite: {hostname: v2.web, "
      "path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}]}]}");
  const CompiledRule* rule = matchPath(*table, "/api/items");
  REQUIRE(rule != nullptr);
  REQUIRE(rule->backends().size() == 2);
  using Pairs = std::vector<std::pair<std::string, std::string>>;

  ForwardEdits v1 = rule->forwardEdits(rule->backends()[0], "/api/items");
  CHECK(v1.request.additions() == Pairs{{"x-rule", "r"}, {"x-backend", "v1"}});
  CHECK(v1.request.removes("x-rule"));
  CHECK(v1.response.additions() == Pairs{{"X-Header-Set", "set-overwrites-values"},
                                         {"X-Header-Add", "header-val-1"},
                                         {"x-served-by", "v1"}});
  CHECK(v1.response.removes("x-header-remove"));
  CHECK(v1.response.removes("x-header-set"));
  CHECK_FALSE(v1.response.removes("x-header-add"));  // add appends to what the backend sent
  CHECK(v1.path == "/api/items");
  CHECK(v1.host.empty());

  ForwardEdits v2 = rule->forwardEdits(rule->backends()[1], "/api/items");
  CHECK(v2.request.additions() == Pairs{{"x-rule", "r"}});
  CHECK_FALSE(v2.request.removes("x-backend"));
  CHECK(v2.response.additions() ==
        Pairs{{"X-Header-Set", "set-overwrites-values"}, {"X-Header-Add", "header-val-1"}});
  CHECK_FALSE(v2.response.removes("x-served-by"));
  CHECK(v2.path == "/v2/items");
  CHECK(v2.host == "v2.web");
}

TEST_CASE("authorityHost", "[routing][filters]") {
  CHECK(authorityHost("web") == "web");
  CHECK(authorityHost("web:8080") == "web");
  CHECK(authorityHost("[fd00::1]:80") == "[fd00::1]");
  CHECK(authorityHost("[fd00::1]") == "[fd00::1]");
  CHECK(authorityHost("10.96.0.10:80") == "10.96.0.10");
}

}  // namespace
}  // namespace ferry::routing
