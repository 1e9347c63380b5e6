// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Pieces of the routed outbound path that need no sockets: the heads it writes, and the
// routing state built from a snapshot (clusters per backend, counters kept across updates).
#include <catch2/catch.hpp>
#include <string>

#include "agent/http_messages.h"
#include "agent/route_state.h"
#include "http/http1_parser.h"

namespace ferry::agent {
namespace {

http::MessageHead parseHead(http::Http1Parser& p, std::string_view wire) {
  auto ev = p.next(wire);
  REQUIRE(ev.type == http::Http1Parser::Event::Type::kHead);
  return p.head();
}

TEST_CASE("forwarded request head: hop-by-hop fields go and edits apply but framing stays",
          "[agent][routing]") {
  http::Http1Parser p(http::Http1Parser::Kind::kRequest);
  auto head = parseHead(p,
                        "POST /a?b=1 HTTP/1.1\r\nHost: front\r\nConnection: keep-alive\r\n"
                        "Expect: 100-continue\r\nX-Drop: 1\r\nContent-Length: 3\r\n\r\nabc");
  http::HeaderEdits edits;
  edits.remove("x-drop");
  edits.add("x-canary", "yes");
  edits.add("content-length", "99");  // never lets a route change framing
  edits.add("bad name", "v");
  std::string out = forwardedRequestHead(head, "/a?b=1", edits);
  CHECK(out == "POST /a?b=1 HTTP/1.1\r\nHost: front\r\nContent-Length: 3\r\nx-canary: yes\r\n\r\n");
}

TEST_CASE("forwarded response head: connection fields replaced by ours", "[agent][routing]") {
  http::Http1Parser p(http::Http1Parser::Kind::kResponse);
  auto head = parseHead(p, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
  CHECK(forwardedResponseHead(head, false) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
  CHECK(forwardedResponseHead(head, true) ==
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nconnection: close\r\n\r\n");
}

TEST_CASE("local replies carry their length and a reason", "[agent][routing]") {
  std::string r = localReply(504, "upstream request timeout\n", false);
  CHECK(r.rfind("HTTP/1.1 504 Gateway Timeout\r\n", 0) == 0);
  CHECK(r.find("content-length: 25\r\n") != std::string::npos);
  CHECK(r.find("connection: close") == std::string::npos);
  CHECK(localReply(404, "", true).find("connection: close\r\n") != std::string::npos);
}

model::NodeSnapshot routedSnapshot(uint32_t weight_v2) {
  model::NodeSnapshot snap;
  snap.node = "node1";
  for (const char* name : {"front", "v1", "v2"}) {
    model::Service s;
    s.key = {"default", name};
    s.vips = {std::string("10.96.0.") + (name[0] == 'f' ? "30" : name[1] == '1' ? "31" : "32")};
    s.ports = {model::ServicePort{.name = "http", .port = 80, .target_port = 8080}};
    snap.services.push_back(s);
  }
  snap.endpoints.push_back({.service = {"default", "v1"},
                            .endpoints = {{.ip = "10.244.2.11"}, {.ip = "fd00:244::2:11"}}});
  snap.endpoints.push_back({.service = {"default", "v2"}, .endpoints = {{.ip = "10.244.1.12"}}});
  model::HttpRoute route;
  route.key = {"default", "split"};
  route.parent_services = {{"default", "front"}};
  route.parent_ports = {80};
  model::HttpRouteRule rule;
  rule.backends = {{.service = {"default", "v1"}, .port = 80, .weight = 90},
                   {.service = {"default", "v2"}, .port = 0, .weight = weight_v2}};
  route.rules.push_back(rule);
  snap.routes.push_back(route);
  return snap;
}

TEST_CASE("routing state: clusters per backend port and counters survive an update",
          "[agent][routing]") {
  RoutingState routing;
  routing.update(WorkloadState(routedSnapshot(10)));
  CHECK(routing.hasRoutes({"default", "front"}, 80));
  CHECK_FALSE(routing.hasRoutes({"default", "front"}, 81));
  CHECK_FALSE(routing.hasRoutes({"default", "v1"}, 80));
  auto view = routing.current();
  REQUIRE(view->cluster({"default", "v1"}, 80) != nullptr);
  // A backendRef without a port: one cluster per port of that Service.
  REQUIRE(view->cluster({"default", "v2"}, 80) != nullptr);
  routing::RouteStats* stats = view->routeStats("default/split");
  REQUIRE(stats != nullptr);
  stats->retries += 3;
  BackendCluster* v1 = view->cluster({"default", "v1"}, 80).get();

  routing.update(WorkloadState(routedSnapshot(20)));
  auto next = routing.current();
  CHECK(next != view);
  CHECK(next->cluster({"default", "v1"}, 80).get() == v1);  // same object: state survives
  CHECK(routing.allStats().at("default/split").retries == 3);
  auto samples = routeSamples(routing);
  bool found = false;
  for (const auto& s : samples) {
    if (s.name == "ferry_route_retries_total") {
      found = true;
      CHECK(s.value == 3);
      CHECK(s.labels == std::vector<std::pair<std::string, std::string>>{{"route", "split"},
                                                                         {"namespace", "default"}});
    }
  }
  CHECK(found);
}

model::Service& serviceOf(model::NodeSnapshot& snap, const std::string& name) {
  for (model::Service& s : snap.services) {
    if (s.key.name == name) {
      return s;
    }
  }
  FAIL("no service " << name);
  return snap.services.front();
}

TEST_CASE("routing state: a backend Service's annotations set its cluster's options",
          "[agent][routing]") {
  RoutingState routing(absl::Milliseconds(700));  // --outlier-base-ejection-ms
  auto snap = routedSnapshot(10);
  serviceOf(snap, "v1").annotations = {{"ferry.dev/lb-policy", "round-robin"},
                                       {"ferry.dev/outlier-consecutive-errors", "2"},
                                       {"ferry.dev/max-connections", "3"},
                                       {"ferry.dev/max-pending-requests", "0"},
                                       {"ferry.dev/max-requests", "zero"}};
  routing.update(WorkloadState(snap));
  auto v1 = routing.current()->cluster({"default", "v1"}, 80);
  REQUIRE(v1 != nullptr);
  const routing::ClusterOptions& o = v1->cluster.options();
  CHECK(o.lb == routing::LbPolicy::kRoundRobin);
  CHECK(o.consecutive_errors == 2);
  CHECK(o.base_ejection == absl::Milliseconds(700));  // the flag, no annotation
  CHECK(o.max_requests == 1024);                      // bad value: the default
  // max-connections 3 with nothing allowed to wait: the fourth connection overflows.
  for (int i = 0; i < 3; ++i) {
    CHECK(v1->limiter.acquire(nullptr).admit == routing::ConnectionLimiter::Admit::kConnect);
  }
  CHECK(v1->limiter.acquire(nullptr).admit == routing::ConnectionLimiter::Admit::kOverflow);
  // v2 has no annotations: defaults (and the flag).
  auto v2 = routing.current()->cluster({"default", "v2"}, 80);
  REQUIRE(v2 != nullptr);
  CHECK(v2->cluster.options().lb == routing::LbPolicy::kLeastRequest);
  CHECK(v2->cluster.options().base_ejection == absl::Milliseconds(700));

  std::vector<std::string> errors;
  serviceClusterOptions(snap, {"default", "v1"}, {}, &errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] ==
        "Service default/v1: annotation ferry.dev/max-requests: \"zero\" is not a whole number "
        "from 1 to 4294967295; keeping the default 1024");

  // Same options: the same cluster. Changed options: a new one; the old stays valid for whoever
  // still holds it.
  routing.update(WorkloadState(snap));
  CHECK(routing.current()->cluster({"default", "v1"}, 80) == v1);
  serviceOf(snap, "v1").annotations["ferry.dev/outlier-base-ejection-ms"] = "50";
  routing.update(WorkloadState(snap));
  auto replaced = routing.current()->cluster({"default", "v1"}, 80);
  CHECK(replaced != v1);
  CHECK(replaced->cluster.options().base_ejection == absl::Milliseconds(50));
  CHECK(v1->limiter.connections() == 3);
  CHECK(routing.current()->cluster({"default", "v2"}, 80) == v2);
}

TEST_CASE("cluster endpoints: IPv4 first and target port resolved", "[agent][routing]") {
  auto snap = routedSnapshot(10);
  auto eps = clusterEndpoints(snap, {"default", "v1"}, 80);
  REQUIRE(eps.size() == 1);
  CHECK(eps[0].ip == "10.244.2.11");
  CHECK(eps[0].port == 8080);
  CHECK(clusterEndpoints(snap, {"default", "v1"}, 81).empty());
  CHECK(clusterEndpoints(snap, {"default", "nope"}, 80).empty());
}

}  // namespace
}  // namespace ferry::agent
