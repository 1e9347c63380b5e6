// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/proxy/tcp_relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <future>
#include <random>
#include <thread>

#include "agent/loopback_listener.h"

namespace ferry::agent {
namespace {

using testing::loopbackListener;

// Client <-> [a | relay | b] <-> server, the relay on its own loop thread.
struct Rig {
  EventLoop loop;
  std::thread thread;
  int client = -1;
  int server = -1;
  std::promise<RelayResult> done;

  explicit Rig(size_t max_buffer, bool fail_upstream = false) {
    uint16_t front_port, back_port;
    int front = loopbackListener(&front_port);
    int back = loopbackListener(&back_port);
    client = testing::loopbackConnect(front_port);
    int a = ::accept4(front, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fail_upstream) {
      ::close(back);  // nothing listens there any more: connect is refused
    }
    auto addr = SocketAddress::parse("127.0.0.1", back_port);
    int b = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(startConnect(b, *addr).ok());
    if (!fail_upstream) {
      server = ::accept4(back, nullptr, nullptr, SOCK_CLOEXEC);
      ::close(back);
    }
    ::close(front);
    loop.post([this, a, b, max_buffer] {
      TcpRelay::start(loop, a, b, true, {.max_buffer = max_buffer, .connect_timeout_ms = 2000},
                      [this](const RelayResult& r) { done.set_value(r); });
    });
    thread = std::thread([this] { loop.run(); });
  }
  ~Rig() {
    loop.stop();
    thread.join();
    ::close(client);
    if (server >= 0) {
      ::close(server);
    }
  }
};

std::string randomBytes(size_t n) {
  std::string s(n, '\0');
  std::mt19937 rng(42);
  for (auto& c : s) {
    c = static_cast<char>(rng());
  }
  return s;
}

void sendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    REQUIRE(n > 0);
    sent += static_cast<size_t>(n);
  }
}

std::string readToEof(int fd) {
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST_CASE("relay copies both ways with half-close", "[agent]") {
  Rig rig(64 * 1024);
  const std::string up = randomBytes(4 << 20);
  const std::string down = randomBytes(3 << 20);
  // Server reads everything (until the client's FIN arrives through the relay), then answers:
  // only possible if half-close is carried through.
  auto server = std::async(std::launch::async, [&] {
    std::string got = readToEof(rig.server);
    sendAll(rig.server, down);
    ::shutdown(rig.server, SHUT_WR);
    return got;
  });
  sendAll(rig.client, up);
  ::shutdown(rig.client, SHUT_WR);
  std::string back = readToEof(rig.client);
  CHECK(server.get() == up);
  CHECK(back == down);
  RelayResult r = rig.done.get_future().get();
  CHECK(r.bytes_a_to_b == up.size());
  CHECK(r.bytes_b_to_a == down.size());
  CHECK_FALSE(r.reset);
}

TEST_CASE("relay holds at most its bound while the reader is stalled", "[agent]") {
  const size_t bound = 16 * 1024;
  Rig rig(bound);
  // The server does not read: the client's writes must stop once the kernel buffers and the
  // relay's bound are full, instead of the relay buffering everything.
  int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
  std::string chunk(64 * 1024, 'x');
  size_t accepted = 0;
  for (int i = 0; i < 2000; ++i) {
    ssize_t n = ::send(rig.client, chunk.data(), chunk.size(), flags);
    if (n > 0) {
      accepted += static_cast<size_t>(n);
      continue;
    }
    pollfd p{rig.client, POLLOUT, 0};
    if (::poll(&p, 1, 200) == 0) {
      break;  // no progress for 200 ms: backpressure reached the sender
    }
  }
  CHECK(accepted < 64u * 1024 * 1024);  // it stopped long before 2000 chunks (125 MiB)
  ::shutdown(rig.client, SHUT_WR);
  std::string got = readToEof(rig.server);
  CHECK(got.size() == accepted);
  ::shutdown(rig.server, SHUT_WR);
  CHECK(readToEof(rig.client).empty());
}

TEST_CASE("a refused upstream resets the client", "[agent]") {
  Rig rig(64 * 1024, /*fail_upstream=*/true);
  RelayResult r = rig.done.get_future().get();
  CHECK(r.connect_failed);
  char c;
  ssize_t n = ::recv(rig.client, &c, 1, 0);
  CHECK(n <= 0);
  if (n < 0) {
    CHECK(errno == ECONNRESET);
  }
}

}  // namespace
}  // namespace ferry::agent
