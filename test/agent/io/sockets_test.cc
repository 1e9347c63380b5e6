// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/io/sockets.h"

#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <catch2/catch.hpp>

namespace ferry::agent {
namespace {

int tcpNoDelay(int fd) {
  int on = -1;
  socklen_t len = sizeof(on);
  REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) == 0);
  return on;
}

uint16_t localPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
  return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len).port();
}

TEST_CASE("every proxied TCP socket has Nagle off: listener, accepted and upstream",
          "[agent][sockets]") {
  Netns host;  // invalid: the test's own namespace
  PodSockets sockets;
  auto listener = sockets.listenIn(host, 0);
  REQUIRE(listener.ok());
  CHECK(tcpNoDelay(*listener) != 0);

  for (const char* ip : {"127.0.0.1", "::1"}) {
    INFO(ip);
    auto to = SocketAddress::parse(ip, localPort(*listener));
    REQUIRE(to.ok());
    auto upstream = sockets.tcpSocketIn(host, to->family());
    REQUIRE(upstream.ok());
    CHECK(tcpNoDelay(*upstream) != 0);
    REQUIRE(startConnect(*upstream, *to).ok());

    pollfd p{*listener, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 5000) == 1);
    int accepted = ::accept4(*listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    REQUIRE(accepted >= 0);
    CHECK(tcpNoDelay(accepted) != 0);  // inherited from the listener
    ::close(accepted);
    ::close(*upstream);
  }
  ::close(*listener);
}

TEST_CASE("sockets in a pod's namespace need the agent's own to return to", "[agent][sockets]") {
  // Opening a namespace needs no privilege; entering one would, and is not reached: without a
  // namespace to return to, a thread that entered a pod's would stay there.
  auto pod = Netns::open("/proc/self/ns/net");
  REQUIRE(pod.ok());
  PodSockets without_host;
  auto refused = without_host.tcpSocketIn(*pod, AF_INET);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  auto listener = without_host.listenIn(*pod, 0);
  CHECK(listener.status().code() == absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ferry::agent
