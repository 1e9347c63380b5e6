// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "routing/route_table.h"
#include "routing_test_util.h"

namespace ferry::routing {
namespace {

using testing::exact;
using testing::key;
using testing::prefix;
using testing::regex;
using testing::Request;
using testing::route;
using testing::rule;

model::HttpRouteMatch withMethod(model::HttpRouteMatch m, std::string method) {
  m.method = std::move(method);
  return m;
}
model::HttpRouteMatch withHeader(model::HttpRouteMatch m, std::string name, std::string value,
                                 bool is_regex = false) {
  m.headers.push_back(
      model::HttpHeaderMatch{.type = is_regex ? model::HttpHeaderMatch::Type::kRegularExpression
                                              : model::HttpHeaderMatch::Type::kExact,
                             .name = std::move(name),
                             .value = std::move(value)});
  return m;
}
model::HttpRouteMatch withQuery(model::HttpRouteMatch m, std::string name, std::string value) {
  m.query_params.push_back(
      model::HttpQueryMatch{.name = std::move(name), .value = std::move(value)});
  return m;
}

// Routes listed out of precedence order on purpose: the table must sort them.
model::NodeSnapshot precedenceSnapshot() {
  model::NodeSnapshot view;
  view.routes.push_back(route("c", {rule({prefix("/same")}, "c-same")}));
  view.routes.push_back(route("b", {rule({}, "default"), rule({prefix("/same/")}, "b-same")}));
  view.routes.push_back(route(
      "a",
      {rule({prefix("/api")}, "api"), rule({exact("/login")}, "login"),
       rule({prefix("/api/v2/")}, "api-v2"), rule({withMethod(prefix("/api"), "POST")}, "api-post"),
       rule({withHeader(prefix("/api"), "x-canary", "true")}, "api-canary"),
       rule({withHeader(withHeader(prefix("/api"), "x-canary", "true"), "x-user", "a.*", true)},
            "api-canary-user"),
       rule({withQuery(prefix("/api"), "debug", "1")}, "api-debug"),
       rule({regex("/img/[0-9]+\\.png")}, "img")}));
  view.routes.push_back(route("p", {rule({exact("/port")}, "port-8080")}, 8080));
  return view;
}

TEST_CASE("match follows Gateway API precedence across rules and routes", "[routing]") {
  std::vector<std::string> errors;
  auto table = RouteTable::build(precedenceSnapshot(), &errors);
  REQUIRE(errors.empty());
  struct Row {
    const char* why;
    Request request;
    uint16_t port;
    const char* backend;
  };
  std::vector<Row> rows = {
      {"exact path", {.path = "/login"}, 80, "login"},
      {"exact is not a prefix", {.path = "/login/x"}, 80, "default"},
      {"prefix equal to the path", {.path = "/api"}, 80, "api"},
      {"prefix by segment", {.path = "/api/users"}, 80, "api"},
      {"prefix is not a string prefix", {.path = "/apiary"}, 80, "default"},
      {"longest prefix wins", {.path = "/api/v2/items"}, 80, "api-v2"},
      {"trailing slash of a prefix ignored", {.path = "/api/v2"}, 80, "api-v2"},
      {"longer prefix beats headers",
       {.path = "/api/v2", .header_fields = {{"x-canary", "true"}}},
       80,
       "api-v2"},
      {"method", {.method = "POST", .path = "/api/x"}, 80, "api-post"},
      {"method beats headers",
       {.method = "POST", .path = "/api/x", .header_fields = {{"x-canary", "true"}}},
       80,
       "api-post"},
      {"header", {.path = "/api/x", .header_fields = {{"x-canary", "true"}}}, 80, "api-canary"},
      {"header names are case-insensitive",
       {.path = "/api/x", .header_fields = {{"X-Canary", "true"}}},
       80,
       "api-canary"},
      {"header values are not",
       {.path = "/api/x", .header_fields = {{"x-canary", "TRUE"}}},
       80,
       "api"},
      {"most headers win",
       {.path = "/api/x", .header_fields = {{"x-canary", "true"}, {"x-user", "alice"}}},
       80,
       "api-canary-user"},
      {"all headers must match",
       {.path = "/api/x", .header_fields = {{"x-user", "alice"}}},
       80,
       "api"},
      {"header regex is a full match",
       {.path = "/api/x", .header_fields = {{"x-canary", "true"}, {"x-user", "bob-alice"}}},
       80,
       "api-canary"},
      {"query parameter", {.path = "/api/x", .query = "a=2&debug=1"}, 80, "api-debug"},
      {"query parameter percent-decoded",
       {.path = "/api/x", .query = "debug=%31"},
       80,
       "api-debug"},
      {"query value must be equal", {.path = "/api/x", .query = "debug=10"}, 80, "api"},
      {"headers beat query parameters",
       {.path = "/api/x", .query = "debug=1", .header_fields = {{"x-canary", "true"}}},
       80,
       "api-canary"},
      {"regular expression", {.path = "/img/12.png"}, 80, "img"},
      {"regular expression is a full match", {.path = "/img/12.png/x"}, 80, "default"},
      {"equal matches: alphabetical route first", {.path = "/same/x"}, 80, "b-same"},
      {"route attached to its port", {.path = "/port"}, 8080, "port-8080"},
      {"route attached to another port", {.path = "/port"}, 80, "default"},
  };
  for (Row& row : rows) {
    INFO(row.why << ": " << row.request.method << " " << row.request.path << "?"
                 << row.request.query);
    const CompiledRule* matched = table->match(key("shop", "web"), row.port, row.request.view());
    REQUIRE(matched != nullptr);
    std::mt19937_64 rng(1);
    const BackendTarget* backend = matched->pickBackend(rng);
    REQUIRE(backend != nullptr);
    CHECK(backend->service.name == row.backend);
  }
}

TEST_CASE("hasRoutes and match are scoped by service and port", "[routing]") {
  model::NodeSnapshot view;
  view.routes.push_back(route("only-8080", {rule({}, "v1")}, 8080));
  model::HttpRoute gateway_only;  // parentRef is a Gateway: not ours
  gateway_only.key = key("shop", "gw");
  gateway_only.rules.push_back(rule({}, "v1"));
  view.routes.push_back(gateway_only);
  auto table = RouteTable::build(view);
  CHECK(table->hasRoutes(key("shop", "web"), 8080));
  CHECK_FALSE(table->hasRoutes(key("shop", "web"), 80));
  CHECK_FALSE(table->hasRoutes(key("shop", "other"), 8080));
  CHECK(table->routeCount() == 1);
  Request request;
  CHECK(table->match(key("shop", "web"), 80, request.view()) == nullptr);
  CHECK(table->match(key("shop", "web"), 8080, request.view()) != nullptr);
  CHECK(table->match(key("other", "web"), 8080, request.view()) == nullptr);
}

TEST_CASE("a rule matches when any of its matches does", "[routing]") {
  model::NodeSnapshot view;
  view.routes.push_back(route("r", {rule({exact("/a"), exact("/b")}, "ab")}));
  auto table = RouteTable::build(view);
  for (const char* path : {"/a", "/b"}) {
    Request request{.path = path};
    CHECK(table->match(key("shop", "web"), 80, request.view()) != nullptr);
  }
  Request other{.path = "/c"};
  CHECK(table->match(key("shop", "web"), 80, other.view()) == nullptr);
}

TEST_CASE("weighted backends split 90/10 within 2 points over 10,000 picks", "[routing]") {
  model::HttpRouteRule r = rule({}, "stable");
  r.backends[0].weight = 90;
  r.backends.push_back(
      model::BackendRef{.service = key("shop", "canary"), .port = 80, .weight = 10});
  r.backends.push_back(model::BackendRef{.service = key("shop", "off"), .port = 80, .weight = 0});
  model::NodeSnapshot view;
  view.routes.push_back(route("split", {r}));
  auto table = RouteTable::build(view);
  Request request;
  const CompiledRule* matched = table->match(key("shop", "web"), 80, request.view());
  REQUIRE(matched != nullptr);
  std::mt19937_64 rng(20261122);
  std::map<std::string, int> seen;
  for (int i = 0; i < 10000; ++i) {
    const BackendTarget* b = matched->pickBackend(rng);
    REQUIRE(b != nullptr);
    ++seen[b->service.name];
  }
  INFO("stable " << seen["stable"] << " canary " << seen["canary"]);
  CHECK(std::abs(seen["stable"] - 9000) <= 200);
  CHECK(std::abs(seen["canary"] - 1000) <= 200);
  CHECK(seen["stable"] + seen["canary"] == 10000);
  CHECK(seen.count("off") == 0);
}

TEST_CASE("every backend weight 0 picks nothing", "[routing]") {
  model::HttpRouteRule r = rule({}, "a");
  r.backends[0].weight = 0;
  r.backends.push_back(model::BackendRef{.service = key("shop", "b"), .port = 80, .weight = 0});
  model::HttpRouteRule none = rule({exact("/none")}, "x");
  none.backends.clear();
  model::NodeSnapshot view;
  view.routes.push_back(route("zero", {r, none}));
  auto table = RouteTable::build(view);
  std::mt19937_64 rng(7);
  Request request;
  const CompiledRule* matched = table->match(key("shop", "web"), 80, request.view());
  REQUIRE(matched != nullptr);
  CHECK(matched->pickBackend(rng) == nullptr);
  Request none_request{.path = "/none"};
  const CompiledRule* empty = table->match(key("shop", "web"), 80, none_request.view());
  REQUIRE(empty != nullptr);
  CHECK(empty->pickBackend(rng) == nullptr);
}

TEST_CASE("rule options: header modifier, timeouts, retry, mirror", "[routing]") {
  model::HttpRouteRule r = rule({}, "v1");
  r.request_header_modifier = model::HttpHeaderModifier{
      .set = {{"x-env", "canary"}}, .add = {{"x-hop", "ferry"}}, .remove = {"x-debug"}};
  r.request_timeout_ms = 300;
  r.backend_request_timeout_ms = 100;
  r.retry = model::HttpRetry{.attempts = 2, .codes = {503, 502}, .backoff_ms = 10};
  r.mirror = model::BackendRef{.service = key("shop", "shadow"), .port = 81};
  r.mirror_numerator = 30;
  model::NodeSnapshot view;
  view.routes.push_back(route("opts", {r}));
  auto table = RouteTable::build(view);
  Request request;
  const CompiledRule* matched = table->match(key("shop", "web"), 80, request.view());
  REQUIRE(matched != nullptr);
  CHECK(matched->routeName() == "shop/opts");
  CHECK(matched->ruleIndex() == 0);

  http::HeaderEdits edits;
  matched->applyHeaderModifier(edits);
  CHECK(edits.removes("X-Env"));  // set replaces every received field
  CHECK(edits.removes("x-debug"));
  CHECK_FALSE(edits.removes("x-hop"));
  using Kv = std::pair<std::string, std::string>;
  CHECK(edits.additions() == std::vector<Kv>{{"x-env", "canary"}, {"x-hop", "ferry"}});

  CHECK(matched->requestTimeout() == absl::Milliseconds(300));
  CHECK(matched->backendRequestTimeout() == absl::Milliseconds(100));
  CHECK(matched->retry().attempts == 2);
  CHECK(matched->retry().status_codes == std::vector<uint32_t>{503, 502});
  CHECK(matched->retry().base_backoff == absl::Milliseconds(10));
  CHECK(matched->retry().max_backoff == absl::Milliseconds(100));

  REQUIRE(matched->mirror() != nullptr);
  CHECK(matched->mirror()->service.name == "shadow");
  CHECK(matched->mirror()->port == 81);
  int mirrored = 0;
  for (int i = 0; i < 10000; ++i) {
    mirrored += matched->shouldMirror() ? 1 : 0;
  }
  CHECK(mirrored == 3000);
}

TEST_CASE("mirror share: exact and evenly spread, for percent and fraction", "[routing]") {
  struct Row {
    uint32_t numerator, denominator;
    int requests;
    int expected;  // floor(requests * n / d)
  };
  const Row rows[] = {
      {100, 100, 50, 50},     {0, 100, 50, 0}, {50, 100, 100, 50},    {50, 100, 7, 3},
      {1, 3, 300, 100},       {2, 3, 10, 6},   {1, 1000, 999, 0},     {1, 1000, 1000, 1},
      {999, 1000, 1000, 999}, {7, 7, 20, 20},  {1, 2147483647, 5, 0},
  };
  for (const Row& row : rows) {
    INFO(row.numerator << "/" << row.denominator << " over " << row.requests);
    model::HttpRouteRule r = rule({}, "v1");
    r.mirror = model::BackendRef{.service = key("shop", "shadow"), .port = 81};
    r.mirror_numerator = row.numerator;
    r.mirror_denominator = row.denominator;
    model::NodeSnapshot view;
    view.routes.push_back(route("m", {r}));
    auto table = RouteTable::build(view);
    Request request;
    const CompiledRule* matched = table->match(key("shop", "web"), 80, request.view());
    REQUIRE(matched != nullptr);
    std::vector<bool> picks;
    for (int i = 0; i < row.requests; ++i) {
      picks.push_back(matched->shouldMirror());
    }
    CHECK(std::count(picks.begin(), picks.end(), true) == row.expected);
    // Evenly spread: every prefix of k requests holds floor(k*n/d) mirrored ones.
    int64_t so_far = 0;
    for (size_t k = 1; k <= picks.size(); ++k) {
      so_far += picks[k - 1] ? 1 : 0;
      CHECK(so_far == static_cast<int64_t>(k * row.numerator / row.denominator));
    }
  }
  // 50%: every second request.
  model::HttpRouteRule r = rule({}, "v1");
  r.mirror = model::BackendRef{.service = key("shop", "shadow"), .port = 81};
  r.mirror_numerator = 1;
  r.mirror_denominator = 2;
  model::NodeSnapshot view;
  view.routes.push_back(route("half", {r}));
  auto table = RouteTable::build(view);
  Request request;
  const CompiledRule* half = table->match(key("shop", "web"), 80, request.view());
  REQUIRE(half != nullptr);
  CHECK_FALSE(half->shouldMirror());
  CHECK(half->shouldMirror());
  CHECK_FALSE(half->shouldMirror());
  CHECK(half->shouldMirror());
}

TEST_CASE("mirror share: the count survives new snapshots while the rule and fraction stay",
          "[routing]") {
  auto mirrorRule = [](uint32_t numerator, uint32_t denominator) {
    model::HttpRouteRule r = rule({}, "v1");
    r.mirror = model::BackendRef{.service = key("shop", "shadow"), .port = 81};
    r.mirror_numerator = numerator;
    r.mirror_denominator = denominator;
    return r;
  };
  auto snapshot = [&](uint32_t numerator, uint32_t denominator, const std::string& name) {
    model::NodeSnapshot view;
    view.routes.push_back(route(name, {mirrorRule(numerator, denominator)}));
    return view;
  };
  Request request;
  auto ruleOf = [&](const std::shared_ptr<const RouteTable>& table) {
    const CompiledRule* matched = table->match(key("shop", "web"), 80, request.view());
    REQUIRE(matched != nullptr);
    return matched;
  };
  // 1%, with a new snapshot every 10 requests (pods come and go): exactly 10 of 1,000 mirrored,
  // as without rebuilds. Counted afresh per table, the 100th request after a rebuild, the only
  // one mirrored, never came.
  std::shared_ptr<const RouteTable> table = RouteTable::build(snapshot(1, 100, "m"));
  int mirrored = 0;
  for (int i = 0; i < 1000; ++i) {
    if (i % 10 == 0) {
      table = RouteTable::build(snapshot(1, 100, "m"), nullptr, table.get());
    }
    mirrored += ruleOf(table)->shouldMirror() ? 1 : 0;
  }
  CHECK(mirrored == 10);
  // The old table, still used by a request that began before the swap, counts with the new.
  auto older = table;
  table = RouteTable::build(snapshot(1, 2, "m"), nullptr, table.get());  // another fraction
  CHECK_FALSE(ruleOf(table)->shouldMirror());  // starts afresh: request 1 of 1/2
  auto next = RouteTable::build(snapshot(1, 2, "m"), nullptr, table.get());
  CHECK(ruleOf(table)->shouldMirror());       // request 2, asked through the old table
  CHECK_FALSE(ruleOf(next)->shouldMirror());  // request 3, through the new
  CHECK(ruleOf(next)->shouldMirror());        // request 4
  // Another route (or rule index) does not take this rule's count; nor without `previous`.
  auto other = RouteTable::build(snapshot(1, 2, "n"), nullptr, next.get());
  CHECK_FALSE(ruleOf(other)->shouldMirror());
  auto fresh = RouteTable::build(snapshot(1, 2, "m"));
  CHECK_FALSE(ruleOf(fresh)->shouldMirror());
  CHECK_FALSE(ruleOf(next)->shouldMirror());   // request 5 of the carried count
  CHECK_FALSE(ruleOf(older)->shouldMirror());  // 1/100's own count, untouched: request 1,001
}

TEST_CASE("mirror share: a zero denominator skips the route with a reason", "[routing]") {
  model::HttpRouteRule r = rule({}, "v1");
  r.mirror = model::BackendRef{.service = key("shop", "shadow"), .port = 81};
  r.mirror_denominator = 0;
  model::NodeSnapshot view;
  view.routes.push_back(route("zero", {r}));
  std::vector<std::string> errors;
  auto table = RouteTable::build(view, &errors);
  CHECK(table->routeCount() == 0);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("denominator") != std::string::npos);
}

TEST_CASE("a rule without options has none", "[routing]") {
  model::NodeSnapshot view;
  view.routes.push_back(route("plain", {rule({}, "v1")}));
  auto table = RouteTable::build(view);
  Request request;
  const CompiledRule* matched = table->match(key("shop", "web"), 80, request.view());
  REQUIRE(matched != nullptr);
  CHECK_FALSE(matched->requestTimeout().has_value());
  CHECK_FALSE(matched->backendRequestTimeout().has_value());
  CHECK(matched->retry().attempts == 0);
  CHECK(matched->mirror() == nullptr);
  std::mt19937_64 rng(3);
  CHECK_FALSE(matched->shouldMirror());
  FaultAction fault = matched->fault(rng);
  CHECK_FALSE(fault.delay.has_value());
  CHECK_FALSE(fault.abort_status.has_value());
  http::HeaderEdits edits;
  matched->applyHeaderModifier(edits);
  CHECK(edits.empty());
}

TEST_CASE("a bad route is skipped with a reason and the others still apply", "[routing]") {
  model::NodeSnapshot view;
  view.routes.push_back(route("bad-path-regex", {rule({regex("/img/(")}, "x")}));
  view.routes.push_back(
      route("bad-header-regex", {rule({withHeader(prefix("/h"), "x-a", "[z-a]", true)}, "x")}));
  model::HttpRouteRule slow = rule({prefix("/slow")}, "x");
  slow.request_timeout_ms = 100;
  slow.backend_request_timeout_ms = 200;
  view.routes.push_back(route("bad-timeouts", {slow}));
  view.routes.push_back(route("bad-path", {rule({exact("relative")}, "x")}));
  model::HttpRoute bad_fault = route("bad-fault", {rule({prefix("/f")}, "x")});
  bad_fault.annotations["fault.ferry.dev/abort-percent"] = "150";
  bad_fault.annotations["fault.ferry.dev/abort-status"] = "503";
  view.routes.push_back(bad_fault);
  view.routes.push_back(route("good", {rule({}, "good")}));
  std::vector<std::string> errors;
  auto table = RouteTable::build(view, &errors);
  REQUIRE(errors.size() == 5);
  CHECK_THAT(errors[0], Catch::Contains("shop/bad-path-regex") &&
                            Catch::Contains("bad regular expression \"/img/(\""));
  CHECK_THAT(errors[1], Catch::Contains("shop/bad-header-regex") && Catch::Contains("header x-a"));
  CHECK_THAT(errors[2], Catch::Contains("backendRequest (200ms) is longer than timeouts.request"));
  CHECK_THAT(errors[3], Catch::Contains("does not start with '/'"));
  CHECK_THAT(errors[4], Catch::Contains("fault.ferry.dev/abort-percent") && Catch::Contains("150"));
  CHECK(table->routeCount() == 1);
  for (const char* path : {"/img/1", "/h", "/slow", "/f"}) {
    Request request{.path = path, .header_fields = {{"x-a", "b"}}};
    const CompiledRule* matched = table->match(key("shop", "web"), 80, request.view());
    REQUIRE(matched != nullptr);
    CHECK(matched->routeName() == "shop/good");
  }
}

TEST_CASE("fault annotations configure delay and abort per request", "[routing]") {
  model::HttpRoute r = route("faulty", {rule({}, "v1")});
  r.annotations["fault.ferry.dev/delay-ms"] = "250";
  r.annotations["fault.ferry.dev/delay-percent"] = "50";
  r.annotations["fault.ferry.dev/abort-status"] = "503";
  r.annotations["fault.ferry.dev/abort-percent"] = "10";
  model::NodeSnapshot view;
  view.routes.push_back(r);
  std::vector<std::string> errors;
  auto table = RouteTable::build(view, &errors);
  REQUIRE(errors.empty());
  Request request;
  const CompiledRule* matched = table->match(key("shop", "web"), 80, request.view());
  REQUIRE(matched != nullptr);
  std::mt19937_64 rng(11);
  int delayed = 0, aborted = 0;
  for (int i = 0; i < 10000; ++i) {
    FaultAction action = matched->fault(rng);
    if (action.delay) {
      CHECK(*action.delay == absl::Milliseconds(250));
      ++delayed;
    }
    if (action.abort_status) {
      CHECK(*action.abort_status == 503);
      ++aborted;
    }
  }
  CHECK(std::abs(delayed - 5000) <= 200);
  CHECK(std::abs(aborted - 1000) <= 200);
}

TEST_CASE("rules held from an old table stay valid after a swap", "[routing]") {
  model::NodeSnapshot v1;
  v1.routes.push_back(route("r", {rule({}, "old")}));
  model::NodeSnapshot v2;
  v2.routes.push_back(route("r", {rule({}, "new")}));
  std::shared_ptr<const RouteTable> current = RouteTable::build(v1);
  // A worker matches against the table it loaded, keeping it alive for the request.
  std::shared_ptr<const RouteTable> in_flight = current;
  Request request;
  const CompiledRule* held = in_flight->match(key("shop", "web"), 80, request.view());
  REQUIRE(held != nullptr);
  current = RouteTable::build(v2);  // the snapshot changes mid-request
  std::mt19937_64 rng(5);
  REQUIRE(held->pickBackend(rng) != nullptr);
  CHECK(held->pickBackend(rng)->service.name == "old");
  const CompiledRule* fresh = current->match(key("shop", "web"), 80, request.view());
  REQUIRE(fresh != nullptr);
  CHECK(fresh->pickBackend(rng)->service.name == "new");
  in_flight.reset();  // the request ends; the old table goes
  CHECK(current->match(key("shop", "web"), 80, request.view())->routeName() == "shop/r");
}

}  // namespace
}  // namespace ferry::routing
