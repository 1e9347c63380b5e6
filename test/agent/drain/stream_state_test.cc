// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Established streams handed to a successor agent (agent/drain/stream_state.h and the hand-over
// socket): the state and bytes survive the records intact, malformed records lose the stream
// (socket closed) without touching the next one, and over a real hand-over socket the app
// socket arrives as the same TCP connection, bytes queued in the kernel included.
#include "agent/drain/stream_state.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "agent/drain/handover.h"
#include "eventually.h"

namespace ferry::agent {
namespace {

using ferry::testing::eventually;
using namespace std::chrono_literals;

std::string pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>(seed + i * 7 + (i >> 9));
  }
  return s;
}

HandedStream sample(int fd, size_t unconfirmed, size_t pending) {
  HandedStream s;
  s.role = HandedStream::Role::kServer;
  s.token = hbone::ResumeToken::generate();
  s.pod_uid = "uid-1";
  s.peer = "spiffe://cluster.local/ns/shop/sa/cart";
  s.local = "spiffe://cluster.local/ns/shop/sa/db";
  s.authority = "10.0.1.5:8080";
  s.dial = "10.0.1.5";
  s.baggage = "k8s.namespace.name=shop";
  s.confirmed = 1000;
  s.sent = 1000 + unconfirmed;
  s.delivered = 77;
  s.app_eof = true;
  s.unconfirmed = pattern(unconfirmed, 'a');
  s.pending = pattern(pending, 'z');
  s.app_fd = fd;
  return s;
}

bool isOpen(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

TEST_CASE("a handed stream's state and bytes cross the records intact", "[handover]") {
  const size_t unconfirmed = GENERATE(size_t{0}, size_t{10}, size_t{200000});
  const size_t pending = GENERATE(size_t{0}, size_t{70000});
  INFO(unconfirmed << " unconfirmed, " << pending << " pending bytes");
  int fd = ::dup(0);
  HandedStream in = sample(fd, unconfirmed, pending);
  std::vector<HandoverRecord> records = encodeStream(in, 64 * 1024);
  CHECK(records.size() == 1 + (unconfirmed + pending + 65530) / 65531);
  StreamDecoder decoder;
  std::optional<HandedStream> out;
  for (size_t i = 0; i < records.size(); ++i) {
    CHECK(StreamDecoder::isStreamRecord(records[i].text));
    CHECK(records[i].text.size() <= 64 * 1024);
    auto r = decoder.feed(records[i].text, records[i].fds);
    REQUIRE(r.ok());
    CHECK(r->has_value() == (i + 1 == records.size()));
    if (r->has_value()) {
      out = std::move(**r);
    }
  }
  REQUIRE(out.has_value());
  CHECK(out->role == in.role);
  CHECK(out->token == in.token);
  CHECK(out->pod_uid == in.pod_uid);
  CHECK(out->peer == in.peer);
  CHECK(out->local == in.local);
  CHECK(out->authority == in.authority);
  CHECK(out->dial == in.dial);
  CHECK(out->baggage == in.baggage);
  CHECK(out->sent == in.sent);
  CHECK(out->confirmed == in.confirmed);
  CHECK(out->delivered == in.delivered);
  CHECK(out->app_eof);
  CHECK_FALSE(out->peer_eof);
  CHECK(out->unconfirmed == in.unconfirmed);
  CHECK(out->pending == in.pending);
  CHECK(out->app_fd == fd);
  ::close(fd);
}

TEST_CASE("a malformed stream record loses that stream only, its socket closed", "[handover]") {
  StreamDecoder decoder;
  SECTION("bytes without a stream") {
    CHECK_FALSE(decoder.feed("data\nxyz", {}).ok());
  }
  SECTION("a stream record without its socket") {
    auto records = encodeStream(sample(-1, 0, 0), 64 * 1024);
    CHECK_FALSE(decoder.feed(records[0].text, {}).ok());
  }
  SECTION("inconsistent offsets or a bad token") {
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {"\nsent 1010\n", "\nsent 1011\n"},
             {"\nconfirmed 1000\n", "\nconfirmed 2000\n"},
             {"\ntoken ", "\ntoken x"},
             {"\nrole server\n", "\nrole both\n"},
             {"\napp-eof 1\n", "\napp-eof 2\n"},
             {"\npeer-eof 0\n", "\npeer-eof 0\npeer-eof 0\n"}}) {
      CAPTURE(to);
      int fd = ::dup(0);
      auto records = encodeStream(sample(fd, 10, 0), 64 * 1024);
      std::string text = records[0].text;
      size_t at = text.find(from);
      REQUIRE(at != std::string::npos);
      text.replace(at, from.size(), to);
      CHECK_FALSE(decoder.feed(text, {fd}).ok());
      CHECK_FALSE(isOpen(fd));
    }
  }
  SECTION("more bytes than announced, then a good stream") {
    int fd = ::dup(0);
    auto records = encodeStream(sample(fd, 10, 0), 64 * 1024);
    REQUIRE(decoder.feed(records[0].text, records[0].fds).ok());
    CHECK_FALSE(decoder.feed("data\n" + std::string(11, 'x'), {}).ok());
    CHECK_FALSE(isOpen(fd));
    int next = ::dup(0);
    auto good = encodeStream(sample(next, 3, 2), 64 * 1024);
    REQUIRE(good.size() == 2);
    REQUIRE(decoder.feed(good[0].text, good[0].fds).ok());
    auto done = decoder.feed(good[1].text, good[1].fds);
    REQUIRE(done.ok());
    REQUIRE(done->has_value());
    CHECK((*done)->unconfirmed == pattern(3, 'a'));
    CHECK((*done)->pending == pattern(2, 'z'));
    ::close(next);
  }
}

std::string socketPath(const char* name) {
  return absl::StrCat(std::filesystem::temp_directory_path().string(), "/ferry-streams-",
                      ::getpid(), "-", name);
}

struct Streams {
  std::mutex mu;
  std::vector<HandedStream> got;
};

TEST_CASE("established streams cross the hand-over socket as the same TCP connections",
          "[handover]") {
  // Three app connections (socketpairs stand in for TCP: SCM_RIGHTS treats them alike): the
  // "agent" end is handed over, the "app" end stays.
  constexpr int kStreams = 3;
  int app[kStreams];
  int agent[kStreams];
  for (int i = 0; i < kStreams; ++i) {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    app[i] = sv[0];
    agent[i] = sv[1];
    // Bytes the app sent before the hand-over wait in the kernel for the new agent.
    std::string before = absl::StrCat("queued-", i);
    REQUIRE(::write(app[i], before.data(), before.size()) == static_cast<ssize_t>(before.size()));
  }
  std::atomic<size_t> handed{0};
  std::atomic<bool> given{false};  // handStreams is asked again while draining: once is all
  HandoverServer::Callbacks callbacks{
      .collect = [] { return std::vector<std::pair<std::string, int>>{}; },
      .onReady = [](pid_t) {},
      .onAbort = [] {},
      .connections = [] { return int64_t{0}; },
      .handStreams =
          [&] {
            std::vector<HandedStream> out;
            if (given.exchange(true)) {
              return out;
            }
            for (int i = 0; i < kStreams; ++i) {
              out.push_back(sample(agent[i], 100000 * static_cast<size_t>(i), 5));
            }
            return out;
          },
      .handed = [&](size_t n) { handed = n; },
  };
  const std::string path = socketPath("tcp");
  auto server = HandoverServer::start(path, callbacks);
  REQUIRE(server.ok());
  InheritedListeners into;
  auto p = Predecessor::takeOver(path, into);
  REQUIRE(p.ok());
  REQUIRE(*p != nullptr);
  Streams streams;
  (*p)->onStream([&](HandedStream s) {
    std::lock_guard lock(streams.mu);
    streams.got.push_back(std::move(s));
  });
  (*p)->ready();
  CHECK(eventually([&] { return handed.load() == kStreams; }, 5s, "handed == kStreams"));
  CHECK(eventually([&] { return (*p)->streamsReceived() == kStreams; }, 5s,
                   "streamsReceived() == kStreams"));
  std::lock_guard lock(streams.mu);
  REQUIRE(streams.got.size() == kStreams);
  for (int i = 0; i < kStreams; ++i) {
    HandedStream& s = streams.got[static_cast<size_t>(i)];
    CHECK(s.unconfirmed.size() == 100000 * static_cast<size_t>(i));
    char buf[32];
    ssize_t n = ::read(s.app_fd, buf, sizeof(buf));
    REQUIRE(n > 0);
    CHECK(std::string(buf, static_cast<size_t>(n)) == absl::StrCat("queued-", i));
    REQUIRE(::write(s.app_fd, "after", 5) == 5);
    n = ::read(app[i], buf, sizeof(buf));
    REQUIRE(n == 5);
    CHECK(std::string(buf, 5) == "after");
    // The old agent closed its descriptor: closing the handed one ends the connection.
    ::close(s.app_fd);
    CHECK(::read(app[i], buf, sizeof(buf)) == 0);
    ::close(app[i]);
  }
}

TEST_CASE("a successor that takes no streams is handed none", "[handover]") {
  std::atomic<int> asked{0};
  HandoverServer::Callbacks callbacks{
      .collect = [] { return std::vector<std::pair<std::string, int>>{}; },
      .onReady = [](pid_t) {},
      .onAbort = [] {},
      .connections = [] { return int64_t{2}; },
      .handStreams =
          [&] {
            ++asked;
            return std::vector<HandedStream>{};
          },
  };
  const std::string path = socketPath("none");
  auto server = HandoverServer::start(path, callbacks);
  REQUIRE(server.ok());
  InheritedListeners into;
  auto p = Predecessor::takeOver(path, into);
  REQUIRE(p.ok());
  REQUIRE(*p != nullptr);
  (*p)->ready();  // plain "ready": an agent of a release without stream hand-over
  CHECK(eventually([&] { return (*p)->connections() == 2; }, 5s, "connections() == 2"));
  CHECK(asked == 0);
  CHECK((*p)->streamsReceived() == 0);
}

}  // namespace
}  // namespace ferry::agent
