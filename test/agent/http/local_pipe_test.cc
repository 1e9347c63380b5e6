// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The in-process pipe of a same-node routed request (agent/http/local_pipe.h) behaves as a
// socketpair would to its two holders: bytes arrive whole and in order both ways under the
// window's backpressure, however little a holder reads per report; a clean close delivers what
// was queued and then the end; a reset fails the other side's reads at once. Driven by a real
// event loop, no sleeps: a 10 s timer only stops a loop that would hang, and fails the test.

#include "agent/http/local_pipe.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

namespace ferry::agent {
namespace {

std::string pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>(seed + (i * 7) % 26);
  }
  return s;
}

// Runs `loop` until `done` says so after a report, or 10 s (then `hung`).
struct Driver {
  EventLoop loop;
  bool hung = false;
  EventLoop::TimerId guard = 0;
  void run() {
    guard = loop.addTimer(std::chrono::seconds(10), [this] {
      hung = true;
      loop.stop();
    });
    loop.run();
  }
  void stop() {
    loop.cancelTimer(guard);
    loop.stop();
  }
};

TEST_CASE("local pipe: 1 MiB each way, read a few bytes per report, arrives whole under the window",
          "[agent][local_pipe]") {
  Driver d;
  PipePair pipe = makePipe(d.loop);
  PipeLink& link = *pipe.link;
  PipeEnd& end = *pipe.end;
  const std::string up = pattern(1 << 20, 'a');
  const std::string down = pattern(1 << 20, 'A');
  std::string got_up, got_down;
  size_t max_pending_seen = 0;
  link.queue(up);
  end.queue(down);
  auto pump = [&](RelayEnd& side, std::string& got, size_t want_total) {
    max_pending_seen = std::max(max_pending_seen, side.pending());
    REQUIRE(side.flush());
    char buf[3001];  // an odd size: reads never line up with writes
    Connection::ReadResult r = side.read(buf, sizeof(buf));
    if (r.status == Connection::ReadStatus::kData) {
      got.append(buf, r.bytes);
    }
    if (got_up.size() == want_total && got_down.size() == want_total) {
      d.stop();
    }
  };
  link.bind([&] { pump(link, got_down, down.size()); });
  end.bind([&] { pump(end, got_up, up.size()); });
  REQUIRE(link.start());
  REQUIRE(end.flush());
  // Only the window went over: the rest waits in each side's queue.
  CHECK(link.pending() == up.size() - kPipeWindow);
  CHECK(end.pending() == down.size() - kPipeWindow);
  d.run();
  CHECK_FALSE(d.hung);
  CHECK(got_up == up);
  CHECK(got_down == down);
  CHECK(link.pending() == 0);
  CHECK(end.pending() == 0);
}

TEST_CASE("local pipe: a clean close delivers what was queued, then the end, and writes then fail",
          "[agent][local_pipe]") {
  Driver d;
  PipePair pipe = makePipe(d.loop);
  const std::string body = pattern(kPipeWindow + 5000, 'k');  // more than the window
  std::string got;
  bool eof = false;
  pipe.end->bind([&] {
    char buf[65536];
    Connection::ReadResult r = pipe.end->read(buf, sizeof(buf));
    if (r.status == Connection::ReadStatus::kData) {
      got.append(buf, r.bytes);
    } else if (r.status == Connection::ReadStatus::kEof) {
      eof = true;
      d.stop();
    }
  });
  pipe.link->queue(body);
  REQUIRE(pipe.link->start());
  pipe.link->close(/*reset=*/false);
  d.run();
  CHECK_FALSE(d.hung);
  CHECK(eof);
  CHECK(got == body);
  // The link is gone: what the end still writes cannot be delivered.
  pipe.end->queue("late");
  CHECK_FALSE(pipe.end->flush());
}

TEST_CASE("local pipe: a half-close is an end after the bytes, the other way still flows",
          "[agent][local_pipe]") {
  Driver d;
  PipePair pipe = makePipe(d.loop);
  std::string at_end, at_link;
  bool end_eof = false;
  pipe.end->bind([&] {
    char buf[64];
    Connection::ReadResult r = pipe.end->read(buf, sizeof(buf));
    if (r.status == Connection::ReadStatus::kData) {
      at_end.append(buf, r.bytes);
    } else if (r.status == Connection::ReadStatus::kEof && !end_eof) {
      end_eof = true;
      pipe.end->queue("answer");  // after the request's end, as an HTTP/1.0 server would
      REQUIRE(pipe.end->flush());
    }
  });
  pipe.link->bind([&] {
    char buf[64];
    Connection::ReadResult r = pipe.link->read(buf, sizeof(buf));
    if (r.status == Connection::ReadStatus::kData) {
      at_link.append(buf, r.bytes);
      if (at_link == "answer") {
        d.stop();
      }
    }
  });
  pipe.link->queue("request");
  REQUIRE(pipe.link->start());
  pipe.link->shutdownWrite();
  d.run();
  CHECK_FALSE(d.hung);
  CHECK(at_end == "request");
  CHECK(end_eof);
  CHECK(at_link == "answer");
}

TEST_CASE("local pipe: a reset fails the other side's reads, unread bytes or not",
          "[agent][local_pipe]") {
  Driver d;
  PipePair pipe = makePipe(d.loop);
  bool failed = false;
  pipe.link->bind([&] {
    char buf[16];
    if (pipe.link->read(buf, sizeof(buf)).status == Connection::ReadStatus::kError) {
      failed = true;
      d.stop();
    }
  });
  pipe.link->queue("request");
  REQUIRE(pipe.link->start());
  pipe.end->queue("an answer the link never reads");
  REQUIRE(pipe.end->flush());
  pipe.end->onAppConnected(false);  // the app was not reached: reset
  d.run();
  CHECK_FALSE(d.hung);
  CHECK(failed);
  CHECK(pipe.link->brokenWhileIdle());
}

}  // namespace
}  // namespace ferry::agent
