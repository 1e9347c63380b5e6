// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Resource exhaustion and slow clients (issue 17 points 5 and 6): the log limiter on a fake
// clock, the accept backoff, the fd reserve and the admin endpoint out of descriptors, the queue
// of HTTP connections waiting for request heads, and the flags that configure them.
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "agent/admin/admin.h"
#include "agent/config.h"
#include "agent/http/http_waiting.h"
#include "agent/io/overload.h"
#include "agent/loopback_listener.h"
#include "log/log.h"

namespace ferry::agent {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST_CASE("a log limiter on a fake clock: one line a second, the rest counted", "[agent]") {
  LogLimiter limiter;  // one second
  uint64_t suppressed = 0;
  REQUIRE(limiter.allowAt(0, &suppressed));
  CHECK(suppressed == 0);
  CHECK_FALSE(limiter.allowAt(kSecond / 2, &suppressed));
  CHECK_FALSE(limiter.allowAt(kSecond - 1, &suppressed));
  REQUIRE(limiter.allowAt(kSecond, &suppressed));
  CHECK(suppressed == 2);

  // A flood like the one seen at the fd limit (17 million lines in 30 s), scaled down: 3 million
  // tries over 30 s of fake time let 30 lines through and account for every other try.
  LogLimiter flood;
  int64_t written = 0;
  uint64_t accounted = 0;
  const int64_t tries = 3'000'000;
  for (int64_t i = 0; i < tries; ++i) {
    if (flood.allowAt(1 + i * (30 * kSecond / tries), &suppressed)) {
      ++written;
      accounted += suppressed;
    }
  }
  CHECK(written == 30);
  uint64_t tail = 0;
  REQUIRE(flood.allowAt(31 * kSecond, &tail));
  CHECK(static_cast<int64_t>(accounted + tail) + written == tries);
}

// Runs `fn` with stderr going to a file; returns what it wrote.
template <typename Fn>
std::string captureStderr(Fn fn) {
  char path[] = "/tmp/ferry-log-XXXXXX";
  int file = ::mkstemp(path);
  REQUIRE(file >= 0);
  std::fflush(stderr);
  int saved = ::dup(2);
  ::dup2(file, 2);
  fn();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  ::close(file);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ::unlink(path);
  return text;
}

int linesWith(const std::string& text, const std::string& needle) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    n += absl::StrContains(line, needle) ? 1 : 0;
  }
  return n;
}

TEST_CASE("LOG_WARN_EVERY_SECOND limits each call site on its own", "[agent]") {
  std::string text = captureStderr([] {
    for (int i = 0; i < 10000; ++i) {
      LOG_WARN_EVERY_SECOND("site one ", i);
      LOG_WARN_EVERY_SECOND("site two ", i);
    }
  });
  // 20,000 calls in far less than a second: one line per site (two if a second boundary passed).
  CHECK(linesWith(text, "site one") >= 1);
  CHECK(linesWith(text, "site one") <= 2);
  CHECK(linesWith(text, "site two") >= 1);
  CHECK(linesWith(text, "site two") <= 2);
  CHECK(linesWith(text, "site one 0") == 1);  // the first call of a site is never held back
}

TEST_CASE("the accept backoff doubles from 50 ms to 1 s and resets", "[agent]") {
  AcceptBackoff backoff;
  std::vector<int64_t> got;
  for (int i = 0; i < 8; ++i) {
    got.push_back(backoff.next().count());
  }
  CHECK(got == std::vector<int64_t>{50, 100, 200, 400, 800, 1000, 1000, 1000});
  backoff.reset();
  CHECK(backoff.next().count() == 50);
  CHECK(overloadCause(EMFILE) == OverloadCause::kEmfile);
  CHECK(overloadCause(ENFILE) == OverloadCause::kEnfile);
  CHECK(overloadCause(ENOBUFS) == OverloadCause::kEnobufs);
  CHECK(overloadCause(ENOMEM) == OverloadCause::kEnomem);
  CHECK_FALSE(overloadCause(EAGAIN).has_value());
  CHECK_FALSE(overloadCause(ECONNABORTED).has_value());
  CHECK(std::string(causeName(OverloadCause::kEnfile)) == "enfile");
}

// Opens /dev/null until the process is out of descriptors; returns the descriptors it opened,
// or nothing when it stopped for another reason than EMFILE.
std::optional<std::vector<int>> exhaustDescriptors() {
  std::vector<int> fds;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) {
    fds.push_back(fd);
  }
  if (errno != EMFILE) {
    return std::nullopt;
  }
  return fds;
}

int connectLoopback(int fd, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
}

// Runs `child` in a forked process (it lowers its own descriptor limit) and returns its exit
// code: 0 is success, other codes say which step failed.
template <typename Fn>
int inChild(Fn child) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    rlimit low{64, 64};
    if (::setrlimit(RLIMIT_NOFILE, &low) != 0) {
      _exit(90);
    }
    _exit(child());
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

TEST_CASE("out of descriptors, the fd reserve still accepts one pending connection", "[agent]") {
  int code = inChild([] {
    uint16_t port = 0;
    int listener = testing::loopbackListener(&port);
    int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FdReserve reserve;
    if (client < 0 || !reserve.hold() || connectLoopback(client, port) != 0) {
      return 1;
    }
    if (!exhaustDescriptors()) {
      return 2;
    }
    if (::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC) >= 0 || errno != EMFILE) {
      return 3;  // the state the agent spun in: a pending connection nobody can accept
    }
    int accepted = acceptWithReserve(listener, reserve, SOCK_CLOEXEC);
    if (accepted < 0 || reserve.held()) {
      return 4;
    }
    ::close(accepted);
    if (!reserve.hold()) {
      return 5;  // the slot came back
    }
    FdReserve none;  // never held: nothing to accept with
    if (acceptWithReserve(listener, none, SOCK_CLOEXEC) >= 0 || errno != EMFILE) {
      return 6;
    }
    return 0;
  });
  CHECK(code == 0);
}

TEST_CASE("the admin endpoint answers while the process is out of descriptors", "[agent]") {
  int code = inChild([] {
    auto admin = AdminServer::start("127.0.0.1", 0,
                                    {{"/ping", AdminServer::getOnly([] {
                                        return AdminServer::Response{200, "text/plain", "pong\n"};
                                      })}});
    if (!admin.ok()) {
      return 1;
    }
    // One GET /ping on `client`: 0 when "pong" came back whole, else the step that failed.
    auto ping = [port = (*admin)->port()](int client) {
      timeval tv{10, 0};
      ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      if (client < 0 || connectLoopback(client, port) != 0) {
        return 3;
      }
      const char kRequest[] = "GET /ping HTTP/1.0\r\n\r\n";
      if (::send(client, kRequest, sizeof(kRequest) - 1, MSG_NOSIGNAL) < 0) {
        return 4;
      }
      std::string reply;
      char buf[512];
      ssize_t n;
      while ((n = ::recv(client, buf, sizeof(buf), 0)) > 0) {
        reply.append(buf, static_cast<size_t>(n));
      }
      return absl::StartsWith(reply, "HTTP/1.0 200") && absl::EndsWith(reply, "pong\n") ? 0 : 5;
    };
    std::vector<int> clients;
    for (int i = 0; i < 3; ++i) {
      clients.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    }
    auto exhausted = exhaustDescriptors();
    if (!exhausted) {
      return 2;
    }
    // Three requests in turn, each accepted with the endpoint's reserve.
    for (int client : clients) {
      if (int step = ping(client); step != 0) {
        return step;
      }
      // The client stays open and nothing else here opens descriptors: the only slot that
      // frees and fills again is the endpoint's reserve, so every request came through it.
    }
    // Descriptors back before the endpoint stops: its thread ends in code UBSan checks, and
    // the check's first run needs a pipe.
    for (int fd : *exhausted) {
      ::close(fd);
    }
    return 0;
  });
  CHECK(code == 0);
}

class FakeWaiter : public HeaderWaiter {
 public:
  void evictForNewer() override { evicted = true; }
  bool evicted = false;
};

TEST_CASE("the header wait queue keeps the agent under its cap, shedding the oldest first",
          "[agent]") {
  std::atomic<int64_t> agent_waiting{0};
  Stats stats;
  HeaderWaitQueue queue(agent_waiting, stats);
  FakeWaiter a, b, c, d;
  REQUIRE(queue.enter(a, 3));
  REQUIRE(queue.enter(b, 3));
  REQUIRE(queue.enter(c, 3));
  CHECK(agent_waiting == 3);
  CHECK(stats.http_awaiting_headers == 3);
  // At the cap: the oldest (a) makes room for d.
  REQUIRE(queue.enter(d, 3));
  CHECK(a.evicted);
  CHECK_FALSE(a.waiting());
  CHECK_FALSE(b.evicted);
  CHECK(agent_waiting == 3);
  CHECK(stats.http_headers_evicted == 1);
  // A head arrived for b: it leaves, and leaving twice changes nothing.
  queue.leave(b);
  queue.leave(b);
  CHECK(agent_waiting == 2);
  CHECK(queue.size() == 2);
  CHECK(queue.enter(b, 3));
  CHECK(queue.enter(b, 3));  // already waiting: counted once
  CHECK(agent_waiting == 3);
  // b left from the middle and came back as the newest: the oldest is now c, then d, then b.
  FakeWaiter f, g;
  REQUIRE(queue.enter(f, 3));
  CHECK(c.evicted);
  CHECK_FALSE(d.evicted);
  REQUIRE(queue.enter(g, 3));
  CHECK(d.evicted);
  CHECK_FALSE(b.evicted);
  CHECK(queue.size() == 3);
  CHECK(stats.http_headers_evicted == 3);

  // Other workers hold the whole cap and this one has nobody to shed: refused.
  std::atomic<int64_t> busy_agent{5};
  Stats other;
  HeaderWaitQueue empty(busy_agent, other);
  FakeWaiter e;
  CHECK_FALSE(empty.enter(e, 5));
  CHECK_FALSE(e.waiting());
  CHECK(other.http_headers_refused == 1);
  CHECK(busy_agent == 5);
  for (FakeWaiter* w : {&b, &c, &d, &f, &g}) {
    queue.leave(*w);
  }
  CHECK(queue.size() == 0);
  CHECK(agent_waiting == 0);
  CHECK(stats.http_awaiting_headers == 0);
}

TEST_CASE("overload and slow-client flags have named defaults and are validated", "[agent]") {
  auto c = parseFlags({"--node=n", "--certs=/c", "--capture=none"});
  REQUIRE(c.ok());
  CHECK(c->http_header_timeout_ms == kDefaultHttpHeaderTimeoutMs);
  CHECK(c->max_http_awaiting_headers == kDefaultMaxHttpAwaitingHeaders);
  CHECK(c->http_idle_timeout_ms == kDefaultHttpIdleTimeoutMs);
  CHECK_FALSE(c->fd_reserve);
  auto set = parseFlags({"--node=n", "--certs=/c", "--capture=none", "--http-header-timeout-ms=500",
                         "--max-http-awaiting-headers=7", "--http-idle-timeout-ms=900",
                         "--fd-reserve=on"});
  REQUIRE(set.ok());
  CHECK(set->http_header_timeout_ms == 500);
  CHECK(set->max_http_awaiting_headers == 7);
  CHECK(set->http_idle_timeout_ms == 900);
  CHECK(set->fd_reserve);
  for (const char* bad : {"--http-header-timeout-ms=0", "--max-http-awaiting-headers=0",
                          "--http-idle-timeout-ms=0", "--fd-reserve=yes"}) {
    INFO(bad);
    CHECK_FALSE(parseFlags({"--node=n", "--certs=/c", "--capture=none", bad}).ok());
  }
}

}  // namespace
}  // namespace ferry::agent
