// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The routed outbound for h2c (issue 22 point 1), in process: a client connection to a routed
// Service VIP speaks h2 with prior knowledge (an nghttp2 client); the agent's worker loop runs
// startHttpOutbound(), which hands the connection to the h2 path; two backends are h2c servers
// on loopback (nghttp2). Each stream is routed on its own: the header match of each request
// picks its backend, and trailers come back on each stream.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "accesslog/accesslog.h"
#include "agent/config.h"
#include "agent/http/http_outbound.h"
#include "agent/io/event_loop.h"
#include "agent/io/sockets.h"
#include "agent/loopback_listener.h"
#include "agent/state/route_state.h"
#include "agent/telemetry/telemetry.h"
#include "agent/worker_context.h"
#include "eventually.h"
#include "http/h2_peer.h"

namespace ferry::agent {
namespace {

using http::testing::H2Message;
using http::testing::H2Peer;
using testing::loopbackListener;

// Request bodies: byte i is 'a' + i % 23, so a lost or reordered chunk shows.
std::string expectedBody(size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<char>('a' + i % 23);
  }
  return out;
}

// An h2c server on loopback: answers every request with 200, body "<name> <path>", and
// trailers grpc-status 0 and x-backend <name>; the body says how many request body bytes came
// and whether they were the expected ones. Runs until destroyed.
class H2Backend {
 public:
  explicit H2Backend(std::string name) : name_(std::move(name)) {
    listener_ = loopbackListener(&port_);
    thread_ = std::thread([this] { run(); });
  }
  ~H2Backend() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }

 private:
  void run() {
    std::vector<std::pair<int, std::unique_ptr<H2Peer>>> conns;
    while (!stop_) {
      std::vector<pollfd> fds{{listener_, POLLIN, 0}};
      for (auto& [fd, peer] : conns) {
        fds.push_back({fd, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 50) <= 0) {
        continue;
      }
      if (fds[0].revents & POLLIN) {
        int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          ++connections_;
          conns.emplace_back(
              fd,
              std::make_unique<H2Peer>(true, [this](const H2Message& req, H2Peer::Reply& reply) {
                reply.headers = {{":status", "200"}, {"content-type", "application/grpc"}};
                reply.body = name_ + " " + req.header(":path") + " " +
                             std::to_string(req.body.size()) +
                             (req.body == expectedBody(req.body.size()) ? " intact" : " damaged");
                reply.trailers = {{"grpc-status", "0"}, {"x-backend", name_}};
                return true;
              }));
          send(fd, *conns.back().second);
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents & (POLLIN | POLLHUP)) {
          auto& [fd, peer] = conns[i - 1];
          char buf[16384];
          ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
          if (n <= 0) {
            continue;
          }
          peer->feed(std::string(buf, static_cast<size_t>(n)));
          send(fd, *peer);
        }
      }
    }
    for (auto& [fd, peer] : conns) {
      ::close(fd);
    }
  }
  static void send(int fd, H2Peer& peer) {
    std::string out = peer.drain();
    (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  }

  std::string name_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

model::Service svc(const std::string& name, const std::string& vip, uint16_t target_port) {
  model::Service s;
  s.key = {"default", name};
  s.vips = {vip};
  s.ports = {model::ServicePort{.name = "grpc", .port = 80, .target_port = target_port}};
  return s;
}

// front (10.96.0.30:80) routed: requests with x-version: v2 to Service v2, the rest to v1.
model::NodeSnapshot h2Route(uint16_t v1_port, uint16_t v2_port) {
  model::NodeSnapshot snap;
  snap.node = "node1";
  snap.services = {svc("front", "10.96.0.30", 0), svc("v1", "10.96.0.31", v1_port),
                   svc("v2", "10.96.0.32", v2_port)};
  snap.endpoints.push_back({.service = {"default", "v1"}, .endpoints = {{.ip = "127.0.0.1"}}});
  snap.endpoints.push_back({.service = {"default", "v2"}, .endpoints = {{.ip = "127.0.0.1"}}});
  model::HttpRoute route;
  route.key = {"default", "by-version"};
  route.parent_services = {{"default", "front"}};
  route.parent_ports = {80};
  model::HttpRouteRule to_v2;
  to_v2.matches = {model::HttpRouteMatch{.headers = {{.name = "x-version", .value = "v2"}}}};
  to_v2.backends = {{.service = {"default", "v2"}, .port = 80, .weight = 1}};
  model::HttpRouteRule to_v1;
  to_v1.backends = {{.service = {"default", "v1"}, .port = 80, .weight = 1}};
  route.rules = {to_v2, to_v1};
  snap.routes.push_back(route);
  return snap;
}

// Stream i's request body size: small ones (kept for retries) and, for i = 7, 1 MiB (beyond
// the 64 KiB kept: streamed under flow control, one try).
size_t bodySize(int i) {
  return i == 7 ? 1024 * 1024 : 100 + i;
}

TEST_CASE("routed h2c: every stream of one connection is routed on its own, trailers come back",
          "[agent][routing][h2]") {
  auto backend1 = std::make_unique<H2Backend>("v1");
  auto backend2 = std::make_unique<H2Backend>("v2");
  H2Backend& v1 = *backend1;
  H2Backend& v2 = *backend2;
  WorkloadStateHolder workloads;
  RoutingState routing;
  LocalPodsHolder pods;
  Config config;
  PodSockets sockets;
  workloads.set(std::make_shared<const WorkloadState>(h2Route(v1.port(), v2.port())));
  routing.update(*workloads.current());
  auto telemetry =
      Telemetry::create({.metrics_address = ""}, std::make_shared<accesslog::MemorySink>());
  REQUIRE(telemetry.ok());
  Shared shared;
  shared.config = &config;
  shared.workloads = &workloads;
  shared.pods = &pods;
  shared.telemetry = telemetry->get();
  shared.routing = &routing;
  shared.sockets = &sockets;
  EventLoop loop;
  auto ctx = std::make_unique<WorkerContext>(0, loop, shared);
  std::thread worker([&] { loop.run(); });

  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) == 0);
  auto pod = std::make_shared<LocalPod>();
  pod->info = {.uid = "uid-client", .name = "client", .ns = "default", .service_account = "c"};
  auto original = SocketAddress::parse("10.96.0.30", 80);
  REQUIRE(original.ok());
  loop.post([&, pod, original = *original, agent_end = pair[1]] {
    startHttpOutbound(*ctx, pod, original, "10.244.0.5", agent_end);
  });

  // 20 streams at once on the one connection, every other one asking for v2.
  const int client = pair[0];
  H2Peer peer(false);
  std::map<int32_t, int> index;
  constexpr int kStreams = 20;
  for (int i = 0; i < kStreams; ++i) {
    std::vector<std::pair<std::string, std::string>> headers = {
        {":method", "POST"},
        {":scheme", "http"},
        {":authority", "front"},
        {":path", "/ferry.Echo/Call" + std::to_string(i)},
        {"content-type", "application/grpc"},
        {"te", "trailers"}};
    if (i % 2 == 1) {
      headers.emplace_back("x-version", "v2");
    }
    index[peer.request(headers, expectedBody(bodySize(i)))] = i;
  }
  std::string out = peer.drain();  // the client preface first
  auto all_closed = [&] {
    for (auto& [id, i] : index) {
      if (!peer.messages[id].closed) {
        return false;
      }
    }
    return true;
  };
  const bool done = ferry::testing::eventually(
      [&] {
        if (!out.empty()) {
          ssize_t n = ::send(client, out.data(), out.size(), MSG_NOSIGNAL);
          if (n > 0) {
            out.erase(0, static_cast<size_t>(n));
          }
        }
        char buf[16384];
        ssize_t n;
        while ((n = ::recv(client, buf, sizeof(buf), 0)) > 0) {
          peer.feed(std::string(buf, static_cast<size_t>(n)));
        }
        out += peer.drain();
        return all_closed();
      },
      std::chrono::seconds(20), "every stream answered", std::chrono::milliseconds(5));
  CHECK(done);
  int to_v1 = 0, to_v2 = 0;
  for (auto& [id, i] : index) {
    const H2Message& m = peer.messages[id];
    INFO("stream " << i);
    const std::string want = i % 2 == 1 ? "v2" : "v1";
    CHECK(m.header(":status") == "200");
    CHECK(m.body == want + " /ferry.Echo/Call" + std::to_string(i) + " " +
                        std::to_string(bodySize(i)) + " intact");
    CHECK(m.trailer("grpc-status") == "0");
    CHECK(m.trailer("x-backend") == want);
    CHECK(m.reset == 0);
    (want == "v1" ? to_v1 : to_v2) += 1;
  }
  CHECK(to_v1 == kStreams / 2);
  CHECK(to_v2 == kStreams / 2);
  // Streams share upstream connections: one per backend (the pool's), not one per request.
  CHECK(v1.connections() == 1);
  CHECK(v2.connections() == 1);

  ::close(client);
  // The backends go too: the pooled upstream connections (and their relays) end with them.
  backend1.reset();
  backend2.reset();
  CHECK(ferry::testing::eventually(
      [&] { return ctx->stats.connections_active.load(std::memory_order_relaxed) == 0; },
      std::chrono::seconds(10), "the routed connection and its upstreams to end"));
  loop.stop();
  worker.join();
}

}  // namespace
}  // namespace ferry::agent
