// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The load generator against the origin server and a stalling server, on loopback, port 0.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <thread>

#include "loadgen/client.h"
#include "loadgen/server.h"
#include "status_testing.h"

namespace ferry::loadgen {
namespace {

Target loopback(uint16_t port) {
  auto t = parseTarget("127.0.0.1:" + std::to_string(port) + "/x");
  REQUIRE_OK(t);
  return *t;
}

TEST_CASE("parseTarget accepts IPv4, bracketed IPv6 and paths, refuses the rest", "[loadgen]") {
  auto a = parseTarget("10.244.2.11:8080/1k");
  REQUIRE_OK(a);
  CHECK(a->host == "10.244.2.11");
  CHECK(a->port == 8080);
  CHECK(a->path == "/1k");
  auto b = parseTarget("[fd00:244::2:11]:80");
  REQUIRE_OK(b);
  CHECK(b->host == "fd00:244::2:11");
  CHECK(b->path == "/");
  CHECK_FALSE(parseTarget("web:80").ok());
  CHECK_FALSE(parseTarget("10.0.0.1").ok());
  CHECK_FALSE(parseTarget("10.0.0.1:70000").ok());
  CHECK_FALSE(parseTarget("[fd00::1]80").ok());
}

TEST_CASE("open loop at a fixed rate completes every scheduled request", "[loadgen]") {
  auto server = Server::start({.address = "127.0.0.1", .port = 0, .body_bytes = 1024});
  REQUIRE_OK(server);
  LoadOptions o;
  o.target = loopback((*server)->port());
  o.rate = 400;
  o.connections = 4;
  o.seconds = 0.5;
  auto r = runLoad(o);
  REQUIRE_OK(r);
  CHECK(r->completed == 200);  // 0.5 s x 400/s, each due exactly once
  CHECK(r->errors == 0);
  CHECK(r->bad_status == 0);
  CHECK(r->connects == 4);
  CHECK((*server)->connections() == 4);
  CHECK((*server)->requests() == 200);
  CHECK(r->latency.count() == 200);
  CHECK(r->latency.percentile(0.5) > 0);
}

TEST_CASE("closed loop with a new connection per request", "[loadgen]") {
  auto server =
      Server::start({.address = "127.0.0.1", .port = 0, .body_bytes = 1024, .threads = 2});
  REQUIRE_OK(server);
  LoadOptions o;
  o.target = loopback((*server)->port());
  o.connections = 2;
  o.seconds = 0.3;
  o.new_connection_per_request = true;
  auto r = runLoad(o);
  REQUIRE_OK(r);
  CHECK(r->completed > 0);
  CHECK(r->errors == 0);
  // One connection per request: the server saw as many connections as requests.
  CHECK(r->connects == r->completed);
  CHECK((*server)->connections() == (*server)->requests());
  CHECK(r->rps() > 0);
}

TEST_CASE("a refused target is an error, not a result", "[loadgen]") {
  // Bind and close: the port is free and nobody listens there.
  auto server = Server::start({.address = "127.0.0.1", .port = 0});
  REQUIRE_OK(server);
  const uint16_t port = (*server)->port();
  server->reset();
  LoadOptions o;
  o.target = loopback(port);
  o.rate = 100;
  o.seconds = 0.1;
  CHECK_FALSE(runLoad(o).ok());
}

// One connection; the 50th request is answered 200 ms late. A closed-loop client would record
// a single slow request; the open-loop client charges every request that fell due during the
// stall from its intended time. Only lower bounds are asserted: a slower machine can only add.
TEST_CASE("a server stall is charged to every request due during it", "[loadgen]") {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(::listen(listener, 4) == 0);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  std::thread server([listener] {
    int fd = ::accept(listener, nullptr, nullptr);
    const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    std::string in;
    char buf[4096];
    int answered = 0;
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) {
      in.append(buf, static_cast<size_t>(n));
      size_t end;
      while ((end = in.find("\r\n\r\n")) != std::string::npos) {
        in.erase(0, end + 4);
        if (++answered == 50) {
          // The stall under test (a slow server), not synchronization.
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        (void)!::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
      }
    }
    ::close(fd);
  });
  LoadOptions o;
  o.target = loopback(ntohs(a.sin_port));
  o.rate = 500;  // one due every 2 ms: about 100 fall due during the stall
  o.connections = 1;
  o.seconds = 0.6;
  auto r = runLoad(o);
  server.join();
  ::close(listener);
  REQUIRE_OK(r);
  CHECK(r->completed == 300);
  CHECK(r->errors == 0);
  // The requests due in the stall's first half waited at least 100 ms each: about 50 of them.
  CHECK(r->latency.countAtOrAbove(100'000'000) >= 40);
  CHECK(r->latency.max() >= 190'000'000);
}

// A fixed number of requests at a fixed rate, each with the next header line, against a server
// that refuses every third with 429 + Retry-After and closes the connection after the tenth
// answer: counts by status, Retry-After, the lines in turn, a reconnect, and the client's spans.
TEST_CASE("a fixed number of requests is counted by status with the header lines in turn",
          "[loadgen]") {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(::listen(listener, 4) == 0);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  std::vector<std::string> seen;
  int accepted = 0;
  std::thread server([&] {
    int answered = 0;
    while (answered < 30) {
      int fd = ::accept(listener, nullptr, nullptr);
      ++accepted;
      std::string in;
      char buf[4096];
      ssize_t n;
      bool open = true;
      while (open && (n = ::recv(fd, buf, sizeof(buf), 0)) > 0) {
        in.append(buf, static_cast<size_t>(n));
        size_t end;
        while (open && (end = in.find("\r\n\r\n")) != std::string::npos) {
          const size_t t = in.find("X-Token: ");
          seen.push_back(t < end ? in.substr(t + 9, in.find("\r\n", t) - t - 9) : "");
          in.erase(0, end + 4);
          ++answered;
          std::string response =
              answered % 3 == 0
                  ? "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
                  : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n";
          open = answered != 10;
          response += open ? "\r\n" : "Connection: close\r\n\r\n";
          response += answered % 3 == 0 ? "" : "ok";
          (void)!::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
        }
      }
      ::close(fd);
    }
  });
  LoadOptions o;
  o.target = loopback(ntohs(a.sin_port));
  o.rate = 300;
  o.connections = 1;
  o.requests = 30;
  o.header_lines = {"X-Token: t0", "X-Token: t1", "X-Token: t2"};
  auto r = runLoad(o);
  server.join();
  ::close(listener);
  REQUIRE_OK(r);
  CHECK(r->errors == 0);
  CHECK(r->status == std::map<int, uint64_t>{{200, 20}, {429, 10}});
  CHECK(r->completed == 20);
  CHECK(r->bad_status == 10);
  CHECK(r->retry_after == 10);
  CHECK(r->retry_after_values == std::vector<std::string>(5, "1"));
  CHECK(accepted == 2);
  CHECK(r->connects == 2);
  REQUIRE(seen.size() == 30);
  for (size_t i = 0; i < seen.size(); ++i) {
    CHECK(seen[i] == "t" + std::to_string(i % 3));
  }
  // The 30th request is due 29/300 s after the first: the client's spans cover at least that.
  CHECK(r->span_max_s >= 29.0 / 300);
  CHECK(r->span_min_s > 0);
  CHECK(r->span_min_s < r->span_max_s);
}

TEST_CASE("holdConnections keeps every connection open after one request", "[loadgen]") {
  raiseFileLimit();
  auto server = Server::start({.address = "127.0.0.1", .port = 0});
  REQUIRE_OK(server);
  auto fds = holdConnections(loopback((*server)->port()), 200);
  REQUIRE_OK(fds);
  CHECK(fds->size() == 200);
  CHECK((*server)->connections() == 200);
  CHECK((*server)->requests() == 200);
  for (int fd : *fds) {
    ::close(fd);
  }
}

}  // namespace
}  // namespace ferry::loadgen
