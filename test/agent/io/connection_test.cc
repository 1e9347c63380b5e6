// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// io::Connection on socketpairs: partial writes straight from the caller's bytes, half-close,
// reads bounded by the caller's buffer (backpressure), read interest paused and resumed on a
// real loop. No sleeps: each step waits on a socket state or on the loop's own events.
#include "agent/io/connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "net/byte_buffer.h"

namespace ferry::agent {
namespace {

struct Pair {
  int ours = -1;
  int theirs = -1;
  explicit Pair(int sndbuf = 0) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    ours = fds[0];
    theirs = fds[1];
    if (sndbuf > 0) {
      REQUIRE(::setsockopt(ours, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) == 0);
    }
  }
  ~Pair() {
    if (theirs >= 0) {
      ::close(theirs);
    }
  }
  // Everything the peer can read now (non-blocking).
  std::string drainTheirs() {
    std::string got;
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(theirs, buf, sizeof(buf), 0)) > 0) {
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
};

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>('a' + (i * 7) % 26);
  }
  return s;
}

TEST_CASE("Connection write sends from the caller's bytes and reports a partial write",
          "[agent][connection]") {
  EventLoop loop;
  Pair p(/*sndbuf=*/4096);
  Connection conn(loop, p.ours, [](uint32_t) {});
  const std::string data = pattern(1 << 20);  // far more than the socket holds

  ssize_t sent = conn.write(data.data(), data.size());
  REQUIRE(sent > 0);
  CHECK(static_cast<size_t>(sent) < data.size());  // the rest stays with the caller
  CHECK(conn.pending() == 0);                      // nothing copied into the connection

  std::string got = p.drainTheirs();
  size_t done = static_cast<size_t>(sent);
  while (done < data.size()) {
    ssize_t n = conn.write(data.data() + done, data.size() - done);
    REQUIRE(n >= 0);
    done += static_cast<size_t>(n);
    got += p.drainTheirs();
  }
  CHECK(got.size() == data.size());
  CHECK(got == data);
}

TEST_CASE("Connection write sends queued bytes first, and none of the caller's while they wait",
          "[agent][connection]") {
  EventLoop loop;
  Pair p(/*sndbuf=*/4096);
  Connection conn(loop, p.ours, [](uint32_t) {});
  const std::string big = pattern(1 << 20);
  conn.queue(big);
  CHECK(conn.write("tail", 4) == 0);  // the socket filled with queued bytes: the caller keeps its
  CHECK(conn.pending() > 0);

  std::string got;
  ssize_t n = 0;
  while (true) {
    got += p.drainTheirs();
    n = conn.write("tail", 4);
    REQUIRE(n >= 0);
    if (n == 4) {
      break;
    }
  }
  got += p.drainTheirs();
  CHECK(got == big + "tail");
}

TEST_CASE("Connection write to a peer that is gone fails", "[agent][connection]") {
  EventLoop loop;
  Pair p;
  Connection conn(loop, p.ours, [](uint32_t) {});
  ::close(p.theirs);
  p.theirs = -1;
  CHECK(conn.write("x", 1) == -1);
}

TEST_CASE("Connection shutdownWrite half-closes: the peer sees EOF and can still send",
          "[agent][connection]") {
  EventLoop loop;
  Pair p;
  Connection conn(loop, p.ours, [](uint32_t) {});
  REQUIRE(conn.write("last", 4) == 4);
  CHECK_FALSE(conn.writeShut());
  conn.shutdownWrite();
  conn.shutdownWrite();  // once only
  CHECK(conn.writeShut());

  char buf[16];
  CHECK(::recv(p.theirs, buf, sizeof(buf), 0) == 4);
  CHECK(::recv(p.theirs, buf, sizeof(buf), 0) == 0);  // FIN

  REQUIRE(::send(p.theirs, "reply", 5, 0) == 5);
  ::shutdown(p.theirs, SHUT_WR);
  net::ByteBuffer in(1024);
  // A short read ends a fill (no recv() just to hear EAGAIN); the FIN comes with the next one.
  CHECK(conn.fill(in) == Connection::ReadStatus::kAgain);
  CHECK(conn.fill(in) == Connection::ReadStatus::kEof);
  CHECK(std::string(reinterpret_cast<const char*>(in.data()), in.size()) == "reply");
}

TEST_CASE("Connection fill stops at the caller's bound and leaves the rest in the socket",
          "[agent][connection]") {
  EventLoop loop;
  Pair p;
  Connection conn(loop, p.ours, [](uint32_t) {});
  const std::string data = pattern(5000);
  REQUIRE(::send(p.theirs, data.data(), data.size(), 0) == 5000);

  net::ByteBuffer in(1000);
  CHECK(conn.fill(in) == Connection::ReadStatus::kAgain);
  CHECK(in.full());
  CHECK(in.size() == 1000);
  CHECK(conn.fill(in) == Connection::ReadStatus::kAgain);  // still full: nothing read
  CHECK(in.size() == 1000);

  std::string got;
  while (got.size() < data.size()) {
    got.append(reinterpret_cast<const char*>(in.data()), in.size());
    in.consume(in.size());
    Connection::ReadStatus s = conn.fill(in);
    REQUIRE(s == Connection::ReadStatus::kAgain);
    if (in.empty()) {
      break;
    }
  }
  CHECK(got == data);
  CHECK(conn.fill(in) == Connection::ReadStatus::kAgain);  // drained: EAGAIN, not EOF
  CHECK(in.empty());
}

TEST_CASE("Connection fill reports a reset peer as an error", "[agent][connection]") {
  EventLoop loop;
  Pair p;
  Connection conn(loop, p.ours, [](uint32_t) {});
  REQUIRE(conn.write("x", 1) == 1);  // unread by the peer: its close is a reset
  ::close(p.theirs);
  p.theirs = -1;
  net::ByteBuffer in(1024);
  // AF_UNIX: a socket closed with unread bytes resets its peer (ECONNRESET).
  CHECK(conn.fill(in) == Connection::ReadStatus::kError);
  CHECK(in.empty());
}

// Two sockets made readable before the loop runs: epoll reports both in one batch when both are
// wanted. The sentinel's event proves the paused connection's would have come with it.
TEST_CASE("Connection read interest paused for backpressure, then resumed", "[agent][connection]") {
  EventLoop loop;
  Pair p;
  Pair sentinel_pair;
  int paused_events = 0;
  std::string got;
  bool resumed = false;
  Connection conn(loop, p.ours, [&](uint32_t events) {
    ++paused_events;
    if (resumed && (events & EPOLLIN)) {
      char buf[64];
      Connection::ReadResult r = conn.read(buf, sizeof(buf));
      if (r.status == Connection::ReadStatus::kData) {
        got.append(buf, r.bytes);
      }
      conn.want(false);
      loop.stop();
    }
  });
  int sentinel_events = 0;
  Connection sentinel(loop, sentinel_pair.ours, [&](uint32_t) {
    ++sentinel_events;
    sentinel.want(false);
    CHECK(paused_events == 0);  // readable all along, but not wanted
    resumed = true;
    conn.want(true);
  });
  REQUIRE(conn.watch(/*read=*/true).ok());
  conn.want(false);  // the buffer behind it is full
  REQUIRE(sentinel.watch(/*read=*/true).ok());
  REQUIRE(::send(p.theirs, "data", 4, 0) == 4);
  REQUIRE(::send(sentinel_pair.theirs, "s", 1, 0) == 1);
  loop.run();
  CHECK(sentinel_events == 1);
  CHECK(paused_events == 1);
  CHECK(got == "data");
}

// A hung-up socket that wants nothing leaves the epoll set after one event (else the loop would
// spin on HUP), and rejoins when it wants something again.
TEST_CASE("Connection that wants nothing leaves the set on hang-up", "[agent][connection]") {
  EventLoop loop;
  Pair p;
  Pair sentinel_pair;
  int events_seen = 0;
  Connection conn(loop, p.ours, [&](uint32_t) { ++events_seen; });
  int sentinel_rounds = 0;
  Connection sentinel(loop, sentinel_pair.ours, [&](uint32_t) {
    // Level-triggered and never read: one event per loop iteration.
    if (++sentinel_rounds == 3) {
      loop.stop();
    }
  });
  REQUIRE(conn.watch(/*read=*/false).ok());
  REQUIRE(sentinel.watch(/*read=*/true).ok());
  ::close(p.theirs);  // both directions gone: EPOLLHUP
  p.theirs = -1;
  REQUIRE(::send(sentinel_pair.theirs, "s", 1, 0) == 1);
  loop.run();
  CHECK(sentinel_rounds == 3);
  CHECK(events_seen == 1);  // reported once, then out of the set
}

// A watched socket that a read drained is not read again until epoll reports input: bytes that
// came since are left for the loop's next round, which reads them (nothing is lost or late by
// more than that round). A socket not in the epoll set, or not wanting input, is always read.
TEST_CASE("Connection read makes no recv while a watched socket is drained, until epoll reports",
          "[agent][connection]") {
  EventLoop loop;
  Pair p;
  std::string got;
  Connection conn(loop, p.ours, [&](uint32_t events) {
    if (events & EPOLLIN) {
      char buf[64];
      Connection::ReadResult r = conn.read(buf, sizeof(buf));
      REQUIRE(r.status == Connection::ReadStatus::kData);
      got.append(buf, r.bytes);
      loop.stop();
    }
  });
  REQUIRE(conn.watch(/*read=*/true).ok());
  char buf[64];
  REQUIRE(::send(p.theirs, "abc", 3, 0) == 3);
  Connection::ReadResult first = conn.read(buf, sizeof(buf));
  REQUIRE(first.status == Connection::ReadStatus::kData);
  CHECK(std::string(buf, first.bytes) == "abc");  // short: the socket is drained

  REQUIRE(::send(p.theirs, "def", 3, 0) == 3);
  // Not reported yet: no recv, the bytes stay in the socket.
  REQUIRE(conn.read(buf, sizeof(buf)).status == Connection::ReadStatus::kAgain);
  loop.run();  // epoll reports them; the owner reads them
  CHECK(got == "def");

  // Read interest dropped: reads go to the socket whatever epoll said.
  conn.want(/*read=*/false);
  REQUIRE(::send(p.theirs, "ghi", 3, 0) == 3);
  Connection::ReadResult paused = conn.read(buf, sizeof(buf));
  REQUIRE(paused.status == Connection::ReadStatus::kData);
  CHECK(std::string(buf, paused.bytes) == "ghi");
  REQUIRE(::send(p.theirs, "jkl", 3, 0) == 3);
  Connection::ReadResult again = conn.read(buf, sizeof(buf));
  REQUIRE(again.status == Connection::ReadStatus::kData);
  CHECK(std::string(buf, again.bytes) == "jkl");
}

TEST_CASE("Connection read of a socket never watched always calls recv", "[agent][connection]") {
  EventLoop loop;
  Pair p;
  Connection conn(loop, p.ours, [](uint32_t) {});
  char buf[64];
  CHECK(conn.read(buf, sizeof(buf)).status == Connection::ReadStatus::kAgain);  // EAGAIN
  REQUIRE(::send(p.theirs, "abc", 3, 0) == 3);
  Connection::ReadResult r = conn.read(buf, sizeof(buf));
  REQUIRE(r.status == Connection::ReadStatus::kData);
  CHECK(std::string(buf, r.bytes) == "abc");
  ::close(p.theirs);
  p.theirs = -1;
  CHECK(conn.read(buf, sizeof(buf)).status == Connection::ReadStatus::kEof);
}

}  // namespace
}  // namespace ferry::agent
