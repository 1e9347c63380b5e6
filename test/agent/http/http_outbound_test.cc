// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The routed outbound path: the heads it writes, the routing state built from a snapshot
// (clusters per backend, counters kept across updates), and HttpOutbound itself between a
// socketpair client and a loopback backend (backpressure on a streamed body).
#include "agent/http/http_outbound.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <future>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "accesslog/accesslog.h"
#include "agent/config.h"
#include "agent/http/http_messages.h"
#include "agent/io/event_loop.h"
#include "agent/io/sockets.h"
#include "agent/loopback_listener.h"
#include "agent/state/route_state.h"
#include "agent/telemetry/telemetry.h"
#include "agent/worker_context.h"
#include "eventually.h"
#include "http/authority.h"
#include "http/http1_parser.h"

namespace ferry::agent {
namespace {

using testing::loopbackListener;

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
  std::vector<http::Header> fields;
  http::fieldsWithAuthority(head.headers, "front", fields);
  std::string out = forwardedRequestHead(head.method, fields, "/a?b=1", edits);
  CHECK(out == "POST /a?b=1 HTTP/1.1\r\nHost: front\r\nContent-Length: 3\r\nx-canary: yes\r\n\r\n");
}

TEST_CASE("forwarded response head: connection fields replaced by ours", "[agent][routing]") {
  http::Http1Parser p(http::Http1Parser::Kind::kResponse);
  auto head = parseHead(p, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
  CHECK(forwardedResponseHead(head, false) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
  CHECK(forwardedResponseHead(head, true) ==
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nconnection: close\r\n\r\n");
}

TEST_CASE("forwarded response head: ResponseHeaderModifier edits", "[agent][routing][filters]") {
  http::Http1Parser p(http::Http1Parser::Kind::kResponse);
  auto head = parseHead(p,
                        "HTTP/1.1 200 OK\r\nX-Header-Set: old\r\nX-Header-Add: a1\r\n"
                        "X-Header-Remove: r\r\nContent-Length: 2\r\n\r\nok");
  http::HeaderEdits edits;
  edits.set("X-Header-Set", "set-overwrites-values");
  edits.add("X-Header-Add", "header-val-1");
  edits.remove("X-Header-Remove");
  edits.add("content-length", "99");  // a route never changes framing
  edits.add("transfer-encoding", "chunked");
  edits.add("connection", "keep-alive");
  CHECK(forwardedResponseHead(head, true, edits) ==
        "HTTP/1.1 200 OK\r\nX-Header-Add: a1\r\nContent-Length: 2\r\n"
        "X-Header-Set: set-overwrites-values\r\nX-Header-Add: header-val-1\r\n"
        "connection: close\r\n\r\n");
}

TEST_CASE("redirect replies: status, reason, Location, empty body", "[agent][routing][filters]") {
  CHECK(redirectReply(301, "http://example.org/x?a=1", false) ==
        "HTTP/1.1 301 Moved Permanently\r\nlocation: http://example.org/x?a=1\r\n"
        "content-length: 0\r\nserver: ferry\r\n\r\n");
  for (auto [status, reason] :
       {std::pair{302, "Found"}, std::pair{303, "See Other"}, std::pair{307, "Temporary Redirect"},
        std::pair{308, "Permanent Redirect"}}) {
    CHECK(redirectReply(status, "/", true)
              .rfind(absl::StrCat("HTTP/1.1 ", status, " ", reason, "\r\n"), 0) == 0);
  }
  CHECK(redirectReply(302, "/", true).find("connection: close\r\n") != std::string::npos);
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

// Byte `i` of the test body: no short period, so a lost, doubled or reordered chunk shows.
char bodyByte(uint64_t i) {
  uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ULL;
  return static_cast<char>((x >> 29) ^ (x >> 47));
}

struct BackendResult {
  bool accepted = false;
  std::string head;
  uint64_t body_bytes = 0;
  uint64_t wrong_bytes = 0;
};

// Reads one request with a Content-Length body, checks the body against bodyByte(), answers
// 200 and closes. Gives up after 30 s without a connection or a byte.
BackendResult serveOneRequest(int listener) {
  BackendResult r;
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, 30000) != 1) {
    return r;
  }
  int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) {
    return r;
  }
  r.accepted = true;
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string buf;
  char chunk[64 * 1024];
  size_t head_end = std::string::npos;
  uint64_t length = 0;
  while (true) {
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      break;
    }
    size_t from = 0;
    if (head_end == std::string::npos) {
      buf.append(chunk, static_cast<size_t>(n));
      head_end = buf.find("\r\n\r\n");
      if (head_end == std::string::npos) {
        continue;
      }
      r.head = buf.substr(0, head_end + 4);
      size_t cl = r.head.find("Content-Length: ");
      if (cl != std::string::npos) {
        length = std::stoull(r.head.substr(cl + 16));
      }
      from = static_cast<size_t>(n) - (buf.size() - r.head.size());
    }
    for (size_t i = from; i < static_cast<size_t>(n); ++i) {
      r.wrong_bytes += chunk[i] != bodyByte(r.body_bytes) ? 1 : 0;
      ++r.body_bytes;
    }
    if (r.body_bytes >= length) {
      break;
    }
  }
  const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
  (void)::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
  ::close(fd);
  return r;
}

// Front Service 10.96.0.30:80 routed to Service v1, whose one endpoint is 127.0.0.1:`port`
// (no workload there: the upstream connection is plain TCP from the agent's namespace) and
// which allows one connection and one waiting request; `delay_ms` > 0: a fault delay on every
// request.
model::NodeSnapshot loopbackRoute(uint16_t port, int delay_ms) {
  model::NodeSnapshot snap;
  snap.node = "node1";
  model::Service front;
  front.key = {"default", "front"};
  front.vips = {"10.96.0.30"};
  front.ports = {model::ServicePort{.name = "http", .port = 80}};
  snap.services.push_back(front);
  model::Service v1;
  v1.key = {"default", "v1"};
  v1.vips = {"10.96.0.31"};
  v1.ports = {model::ServicePort{.name = "http", .port = 80, .target_port = port}};
  v1.annotations = {{"ferry.dev/max-connections", "1"}, {"ferry.dev/max-pending-requests", "1"}};
  snap.services.push_back(v1);
  snap.endpoints.push_back({.service = {"default", "v1"}, .endpoints = {{.ip = "127.0.0.1"}}});
  model::HttpRoute route;
  route.key = {"default", "to-v1"};
  route.parent_services = {{"default", "front"}};
  route.parent_ports = {80};
  if (delay_ms > 0) {
    route.annotations = {{"fault.ferry.dev/delay-ms", std::to_string(delay_ms)}};
  }
  model::HttpRouteRule rule;
  rule.backends = {{.service = {"default", "v1"}, .port = 80, .weight = 1}};
  route.rules.push_back(rule);
  snap.routes.push_back(route);
  return snap;
}

// HttpOutbound on a worker loop of its own, for the routed Service of loopbackRoute(), its
// backend listening on loopback.
struct RoutedRig {
  explicit RoutedRig(int delay_ms) {
    listener = loopbackListener(&backend_port);
    workloads.set(std::make_shared<const WorkloadState>(loopbackRoute(backend_port, delay_ms)));
    routing.update(*workloads.current());
    auto t = Telemetry::create({.metrics_address = ""}, std::make_shared<accesslog::MemorySink>());
    REQUIRE(t.ok());
    telemetry = *std::move(t);
    shared.config = &config;
    shared.workloads = &workloads;
    shared.pods = &pods;
    shared.telemetry = telemetry.get();
    shared.routing = &routing;
    shared.sockets = &sockets;  // the backend is on the test's own loopback
    ctx = std::make_unique<WorkerContext>(0, loop, shared);
    thread = std::thread([this] { loop.run(); });
  }
  ~RoutedRig() {
    // A relay to the backend ends on the loop once the backend's close is read; stopping the
    // loop before that would leave it unfinished (and its memory unreleased). Bounded wait on
    // the gauge, not on time alone.
    CHECK(ferry::testing::eventually(
        [&] { return ctx->stats.connections_active.load(std::memory_order_relaxed) == 0; },
        std::chrono::seconds(10), "the rig's connections to end"));
    loop.stop();
    thread.join();
    ::close(listener);
  }
  // A client connection to the front Service's VIP, captured: returns the client's end.
  int connect() {
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    REQUIRE(::fcntl(pair[1], F_SETFL, O_NONBLOCK) == 0);
    auto pod = std::make_shared<LocalPod>();
    pod->info = {
        .uid = "uid-client", .name = "client", .ns = "default", .service_account = "client"};
    auto original = SocketAddress::parse("10.96.0.30", 80);
    REQUIRE(original.ok());
    loop.post([this, pod, original = *original, agent_end = pair[1]] {
      startHttpOutbound(*ctx, pod, original, "10.244.0.5", agent_end);
    });
    return pair[0];
  }

  uint16_t backend_port = 0;
  int listener = -1;
  WorkloadStateHolder workloads;
  RoutingState routing;
  LocalPodsHolder pods;
  Config config;
  PodSockets sockets;
  std::unique_ptr<Telemetry> telemetry;
  Shared shared;
  EventLoop loop;
  std::unique_ptr<WorkerContext> ctx;
  std::thread thread;
};

// Sends an 8 MiB body through HttpOutbound while its one try waits to start (`hold_slot`: for
// the connection slot the test holds; else for the route's 5 s fault delay), checks how much of
// it the agent took meanwhile, then lets the try start and checks the backend got it whole.
void streamWhileWaiting(bool hold_slot) {
  RoutedRig rig(hold_slot ? 0 : 5000);
  RoutingState& routing = rig.routing;
  WorkerContext& ctx = *rig.ctx;
  const int listener = rig.listener;

  // Holding v1's only connection slot, the test makes the request below wait in its queue.
  auto v1 = routing.current()->cluster({"default", "v1"}, 80);
  REQUIRE(v1 != nullptr);
  if (hold_slot) {
    REQUIRE(v1->limiter.acquire(nullptr).admit == routing::ConnectionLimiter::Admit::kConnect);
  }

  const int client = rig.connect();
  REQUIRE(::fcntl(client, F_SETFL, O_NONBLOCK) == 0);
  // Little room in the socket itself: what the client could write, the agent mostly read.
  int sndbuf = 32 * 1024;
  ::setsockopt(client, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

  constexpr uint64_t kBody = 8 * 1024 * 1024;
  std::string request =
      absl::StrCat("POST /upload HTTP/1.1\r\nHost: front\r\nContent-Length: ", kBody, "\r\n\r\n");
  const uint64_t total = request.size() + kBody;
  uint64_t written = 0;
  auto writeSome = [&] {
    char chunk[16 * 1024];
    size_t n = 0;
    for (; n < sizeof(chunk) && written + n < total; ++n) {
      const uint64_t at = written + n;
      chunk[n] = at < request.size() ? request[at] : bodyByte(at - request.size());
    }
    ssize_t sent = ::send(client, chunk, n, MSG_NOSIGNAL);
    if (sent > 0) {
      written += static_cast<uint64_t>(sent);
    }
    return sent;
  };
  // Write until the agent stops taking bytes (no progress for 1 s) or took everything.
  while (written < total) {
    if (writeSome() > 0) {
      continue;
    }
    REQUIRE(errno == EAGAIN);
    pollfd p{client, POLLOUT, 0};
    if (::poll(&p, 1, 1000) == 0) {
      break;
    }
  }
  const uint64_t taken_while_waiting = written;
  std::printf("streamed body waiting for %s: the client could write %llu of %llu bytes\n",
              hold_slot ? "a connection slot" : "a fault delay",
              static_cast<unsigned long long>(taken_while_waiting),
              static_cast<unsigned long long>(total));
  // The agent holds 256 KiB of body (kMaxPendingOut) plus at most one 16 KiB read; the
  // socketpair holds what SO_SNDBUF lets it. Unbounded, the agent would take all 8 MiB.
  CHECK(taken_while_waiting < 512 * 1024);

  // The slot frees (or the delay ends): the try starts, and reading resumes until the whole
  // body went up.
  auto backend = std::async(std::launch::async, [listener] { return serveOneRequest(listener); });
  if (hold_slot) {
    v1->limiter.release();
  }
  REQUIRE(::fcntl(client, F_SETFL, 0) == 0);
  timeval tv{30, 0};
  ::setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  while (written < total && writeSome() > 0) {
  }
  CHECK(written == total);
  BackendResult got = backend.get();
  CHECK(got.accepted);
  CHECK(got.head.rfind("POST /upload HTTP/1.1\r\n", 0) == 0);
  CHECK(got.body_bytes == kBody);
  CHECK(got.wrong_bytes == 0);
  std::string response;
  char buf[4096];
  while (response.find("\r\n\r\nok") == std::string::npos) {
    ssize_t n = ::recv(client, buf, sizeof(buf), 0);
    if (n <= 0) {
      break;
    }
    response.append(buf, static_cast<size_t>(n));
  }
  CHECK(response.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);

  // The client leaves: the agent closes its side (waited for, up to 30 s).
  ::close(client);
  CHECK(ferry::testing::eventually([&] { return ctx.stats.connections_active.load() == 0; },
                                   std::chrono::seconds(30), "the agent to close its side"));
}

TEST_CASE("routed hostile rows: the direct path's request-target rules, and what the backend gets",
          "[agent][routing][hostile]") {
  struct Row {
    const char* name;
    std::string request;
    int status;
    std::string forwarded;  // the head the backend receives ("" when nothing reaches it)
  };
  const Row rows[] = {
      {"absolute-form authority wins over Host (RFC 9112 3.2.2)",
       "GET http://V1.Example.:80/x?q HTTP/1.1\r\nHost: front\r\n\r\n", 200,
       "GET /x?q HTTP/1.1\r\nHost: v1.example:80\r\n\r\n"},
      {"Host forwarded in normal form, first", "GET /x HTTP/1.1\r\nX-A: 1\r\nHost: Front.:\r\n\r\n",
       200, "GET /x HTTP/1.1\r\nHost: front\r\nX-A: 1\r\n\r\n"},
      {"HTTP/1.0 absolute-form without Host", "GET http://front/x HTTP/1.0\r\n\r\n", 200,
       "GET /x HTTP/1.1\r\nHost: front\r\n\r\n"},
      {"HTTP/1.0 without Host (was forwarded as host: unknown)", "GET /x HTTP/1.0\r\n\r\n", 400,
       ""},
      {"HTTP/1.1 without Host", "GET /x HTTP/1.1\r\n\r\n", 400, ""},
      {"Host with an empty label", "GET /x HTTP/1.1\r\nHost: front..\r\n\r\n", 400, ""},
  };
  for (const Row& row : rows) {
    INFO(row.name);
    RoutedRig rig(0);
    std::future<BackendResult> backend;
    if (!row.forwarded.empty()) {
      backend = std::async(std::launch::async,
                           [listener = rig.listener] { return serveOneRequest(listener); });
    }
    const int client = rig.connect();
    timeval tv{30, 0};
    ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    REQUIRE(::send(client, row.request.data(), row.request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(row.request.size()));
    // Until the agent closes (a refusal) or the backend's "ok" arrived.
    std::string response;
    char buf[4096];
    while (!response.ends_with("\r\n\r\nok")) {
      ssize_t n = ::recv(client, buf, sizeof(buf), 0);
      if (n <= 0) {
        break;
      }
      response.append(buf, static_cast<size_t>(n));
    }
    ::close(client);
    INFO(response);
    CHECK(response.starts_with(absl::StrCat("HTTP/1.1 ", row.status, " ")));
    if (row.forwarded.empty()) {
      pollfd p{rig.listener, POLLIN, 0};
      CHECK(::poll(&p, 1, 0) == 0);  // the backend was never connected to
    } else {
      BackendResult got = backend.get();
      CHECK(got.head == row.forwarded);
    }
  }
}

TEST_CASE(
    "a streamed body waiting for a connection slot is read up to a bound, then all of it "
    "reaches the backend",
    "[agent][routing]") {
  streamWhileWaiting(/*hold_slot=*/true);
}

TEST_CASE(
    "a streamed body waiting out a fault delay is read up to a bound, then all of it "
    "reaches the backend",
    "[agent][routing]") {
  streamWhileWaiting(/*hold_slot=*/false);
}

}  // namespace
}  // namespace ferry::agent
