// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The listener hand-over protocol (agent/drain/handover.h) between two in-process ends: listening
// sockets arrive as the same sockets (their queued connections too), in batches beyond one
// record, "ready" and an abort reach the old side, drain reports reach the new one.
#include "agent/drain/handover.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/loopback_listener.h"
#include "eventually.h"

namespace ferry::agent {
namespace {

using ferry::testing::eventually;
using namespace std::chrono_literals;

int listenLoopback() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  return fd;
}

uint16_t portOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

struct OldSide {
  std::vector<int> fds;
  std::vector<std::pair<std::string, int>> named;
  std::atomic<int> collected{0};
  std::atomic<pid_t> ready_from{0};
  std::atomic<int> aborted{0};
  std::atomic<int64_t> connections{3};

  HandoverServer::Callbacks callbacks() {
    return {.collect =
                [this] {
                  ++collected;
                  return named;
                },
            .onReady = [this](pid_t p) { ready_from = p; },
            .onAbort = [this] { ++aborted; },
            .connections = [this] { return connections.load(); }};
  }
  ~OldSide() {
    for (int fd : fds) {
      ::close(fd);
    }
  }
};

std::string socketPath(const char* name) {
  return absl::StrCat(std::filesystem::temp_directory_path().string(), "/ferry-handover-",
                      ::getpid(), "-", name);
}

}  // namespace

TEST_CASE("handover: no running agent means nothing to take", "[handover]") {
  InheritedListeners into;
  auto p = Predecessor::takeOver(socketPath("none"), into);
  REQUIRE(p.ok());
  CHECK(*p == nullptr);
  CHECK(into.size() == 0);
}

TEST_CASE("handover: listeners move as the same sockets, ready and drain reports cross",
          "[handover]") {
  const size_t count = GENERATE(size_t{1}, kMaxFdsPerRecord, kMaxFdsPerRecord + 7);
  INFO(count << " listeners");
  OldSide old;
  for (size_t i = 0; i < count; ++i) {
    old.fds.push_back(listenLoopback());
    old.named.push_back({i == 0 ? "admin" : podListenerName("uid-" + std::to_string(i % 5), 15001),
                         old.fds.back()});
  }
  // A connection queued on the old socket before the hand-over is accepted by the new side.
  int queued = testing::loopbackConnect(portOf(old.fds[0]));
  const std::string path = socketPath("main");
  auto server = HandoverServer::start(path, old.callbacks());
  REQUIRE(server.ok());

  InheritedListeners into;
  auto p = Predecessor::takeOver(path, into);
  REQUIRE(p.ok());
  REQUIRE(*p != nullptr);
  CHECK((*p)->pid() == ::getpid());
  CHECK(old.collected == 1);
  REQUIRE(into.size() == count);
  int admin = into.takeOne("admin");
  REQUIRE(admin >= 0);
  CHECK(admin != old.fds[0]);                         // a descriptor of its own...
  CHECK(portOf(admin) == portOf(old.fds[0]));         // ...for the same socket
  CHECK(::accept4(admin, nullptr, nullptr, 0) >= 0);  // with its queue
  ::close(admin);
  size_t pods = 0;
  for (int k = 0; k < 5; ++k) {
    for (int fd : into.take(podListenerName("uid-" + std::to_string(k), 15001))) {
      ++pods;
      ::close(fd);
    }
  }
  CHECK(pods == count - 1);
  CHECK(into.size() == 0);

  std::atomic<int> gone{0};
  (*p)->onGone([&] { ++gone; });
  (*p)->ready();
  CHECK(eventually([&] { return old.ready_from.load() == ::getpid(); }, 5s,
                   "old.ready_from.load() == ::getpid()"));
  CHECK(eventually([&] { return (*p)->connections() == 3; }, 5s, "(*p)->connections() == 3"));
  old.connections = 1;
  CHECK(eventually([&] { return (*p)->connections() == 1; }, 5s, "(*p)->connections() == 1"));
  CHECK((*p)->alive());
  server->reset();  // the old agent exits
  CHECK(eventually([&] { return gone.load() == 1; }, 5s, "gone.load() == 1"));
  CHECK_FALSE((*p)->alive());
  CHECK(old.aborted == 0);
  // The old side's socket file went with it: it was still its own.
  CHECK_FALSE(std::filesystem::exists(path));
  ::close(queued);
}

TEST_CASE(
    "handover: a successor that leaves before ready is an abort, and a rebound path "
    "is not the old side's to remove",
    "[handover]") {
  OldSide old;
  old.fds.push_back(listenLoopback());
  old.named.push_back({"metrics", old.fds.back()});
  const std::string path = socketPath("abort");
  auto server = HandoverServer::start(path, old.callbacks());
  REQUIRE(server.ok());
  {
    InheritedListeners into;
    auto p = Predecessor::takeOver(path, into);
    REQUIRE(p.ok());
    REQUIRE(*p != nullptr);
    CHECK(into.size() == 1);
  }  // gone without "ready"
  CHECK(eventually([&] { return old.aborted.load() == 1; }, 5s, "old.aborted.load() == 1"));
  CHECK(old.ready_from == 0);

  // A successor takes over and binds the path anew (as an agent does): the old side's exit
  // leaves the new socket file alone.
  InheritedListeners into;
  auto p = Predecessor::takeOver(path, into);
  REQUIRE(p.ok());
  REQUIRE(*p != nullptr);
  OldSide next;
  auto successor_server = HandoverServer::start(path, next.callbacks());
  REQUIRE(successor_server.ok());
  (*p)->ready();
  CHECK(eventually([&] { return old.ready_from.load() != 0; }, 5s, "old.ready_from.load() != 0"));
  server->reset();
  CHECK(std::filesystem::exists(path));
  CHECK(eventually([&] { return !(*p)->alive(); }, 5s, "!(*p)->alive()"));
  successor_server->reset();
  CHECK_FALSE(std::filesystem::exists(path));
}

}  // namespace ferry::agent
