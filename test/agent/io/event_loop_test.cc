// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// EventLoop::afterBatch: work that runs once the current batch is over, one round per batch, so
// an owner that re-arms itself (an in-process end reporting like a level-triggered socket,
// agent/http/upstream_link.h) never starves the sockets and never waits on an idle poll. No
// sleeps: every step is driven by the loop's own rounds; a 10 s timer only stops a loop that
// would otherwise hang, and fails the test.

#include "agent/io/event_loop.h"

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ferry::agent {
namespace {

// Reads whatever is there and logs an "E" per batch.
class Reader : public EventHandler {
 public:
  Reader(int fd, std::string& log) : fd_(fd), log_(log) {}
  void onEvents(uint32_t) override {
    char buf[64];
    while (::recv(fd_, buf, sizeof(buf), 0) > 0) {
    }
    log_ += "E";
  }

 private:
  int fd_;
  std::string& log_;
};

TEST_CASE("afterBatch: a function that re-arms itself lets every socket event in between",
          "[agent][event_loop]") {
  EventLoop loop;
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  std::string log;
  Reader reader(fds[0], log);
  REQUIRE(loop.add(fds[0], EPOLLIN, &reader).ok());
  bool hung = false;
  const EventLoop::TimerId guard = loop.addTimer(std::chrono::seconds(10), [&] {
    hung = true;
    loop.stop();
  });
  // Each round writes a byte (the socket turns readable) and queues the next round; after three,
  // a round that writes nothing: only a poll that does not wait lets it run.
  int rounds = 0;
  std::function<void()> round = [&] {
    log += "F";
    ++rounds;
    if (rounds <= 3) {
      REQUIRE(::send(fds[1], "x", 1, 0) == 1);
      loop.afterBatch(round);
    } else if (rounds == 4) {
      loop.afterBatch(round);
    } else {
      loop.cancelTimer(guard);
      loop.stop();
    }
  };
  loop.afterBatch(round);
  loop.run();
  loop.remove(fds[0]);
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK_FALSE(hung);
  // The socket's event comes between the rounds, never two rounds in a row while it waits.
  CHECK(log == "FEFEFEFF");
}

TEST_CASE("afterBatch: work a timer queues runs after the next poll, which does not wait",
          "[agent][event_loop]") {
  EventLoop loop;
  bool hung = false;
  bool ran = false;
  const EventLoop::TimerId guard = loop.addTimer(std::chrono::seconds(10), [&] {
    hung = true;
    loop.stop();
  });
  loop.addTimer(std::chrono::milliseconds(1), [&] {
    loop.afterBatch([&] {
      ran = true;
      loop.cancelTimer(guard);
      loop.stop();
    });
  });
  loop.run();
  CHECK(ran);
  CHECK_FALSE(hung);
}

int g_before_wait_calls = 0;

TEST_CASE(
    "setBeforeWait: the hook runs after a round's work, before the loop waits, and at its end",
    "[event_loop]") {
  g_before_wait_calls = 0;
  EventLoop loop;
  loop.setBeforeWait(+[] { ++g_before_wait_calls; });
  int seen_by_timer = -1;
  loop.addTimer(std::chrono::milliseconds(0), [&] {
    seen_by_timer = g_before_wait_calls;
    loop.stop();
  });
  loop.run();
  REQUIRE(seen_by_timer >= 0);
  // Once between the timer and the wait that stop() cut short, once as the loop ended.
  CHECK(g_before_wait_calls == seen_by_timer + 2);
}

TEST_CASE("timers: cancelled and fired timers' nodes are reused, in deadline order, captures freed",
          "[event_loop]") {
  EventLoop loop;
  std::string fired;
  auto held = std::make_shared<int>(0);
  // Round 1: three far timers cancelled (one holding `held`), one near timer fired.
  std::vector<EventLoop::TimerId> far;
  for (int i = 0; i < 3; ++i) {
    far.push_back(loop.addTimer(std::chrono::hours(1), [&fired, held] { fired += "X"; }));
  }
  CHECK(held.use_count() == 4);
  for (EventLoop::TimerId id : far) {
    loop.cancelTimer(id);
  }
  CHECK(held.use_count() == 1);  // a cancelled timer's function is gone at once
  loop.cancelTimer(far[0]);      // twice: nothing
  // Round 2, on the recycled nodes: added out of order, they fire in deadline order.
  loop.addTimer(std::chrono::milliseconds(2), [&] { fired += "b"; });
  loop.addTimer(std::chrono::milliseconds(0), [&] { fired += "a"; });
  const EventLoop::TimerId dropped =
      loop.addTimer(std::chrono::milliseconds(1), [&] { fired += "never"; });
  loop.addTimer(std::chrono::milliseconds(3), [&] {
    fired += "c";
    // Added while a timer fires, on the node it just gave back.
    loop.addTimer(std::chrono::milliseconds(0), [&] {
      fired += "d";
      loop.stop();
    });
  });
  loop.cancelTimer(dropped);
  loop.addTimer(std::chrono::seconds(10), [&] {
    fired += "timeout";
    loop.stop();
  });
  loop.run();
  CHECK(fired == "abcd");
}

}  // namespace
}  // namespace ferry::agent
