// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "poll_until.h"
#include "routing/connection_limiter.h"

namespace ferry::routing {
namespace {

using Admit = ConnectionLimiter::Admit;

TEST_CASE("connection limiter: connect up to the limit, then wait, then overflow", "[routing]") {
  ConnectionLimiter limiter(2, 1);
  int granted = 0;
  auto onGrant = [&] { ++granted; };
  CHECK(limiter.acquire(onGrant).admit == Admit::kConnect);
  CHECK_FALSE(limiter.atLimit());
  CHECK(limiter.acquire(onGrant).admit == Admit::kConnect);
  CHECK(limiter.atLimit());
  auto waiting = limiter.acquire(onGrant);
  REQUIRE(waiting.admit == Admit::kWait);
  REQUIRE(waiting.ticket != nullptr);
  CHECK(limiter.hasWaiters());
  CHECK(limiter.acquire(onGrant).admit == Admit::kOverflow);
  CHECK(limiter.acquire(onGrant).admit == Admit::kOverflow);
  CHECK(limiter.overflows() == 2);
  CHECK(granted == 0);
  CHECK_FALSE(limiter.claim(waiting.ticket));  // not granted yet

  // A closed connection hands its slot to the waiter: the count stays at the limit.
  limiter.release();
  CHECK(granted == 1);
  CHECK(limiter.connections() == 2);
  CHECK_FALSE(limiter.hasWaiters());
  CHECK(limiter.claim(waiting.ticket));
  CHECK_FALSE(limiter.claim(waiting.ticket));  // once
  limiter.cancel(waiting.ticket);              // after claim: no effect
  CHECK(limiter.connections() == 2);

  limiter.release();
  limiter.release();
  CHECK(limiter.connections() == 0);
  limiter.release();  // never below zero
  CHECK(limiter.connections() == 0);
}

TEST_CASE("connection limiter: max pending 0 refuses at once at the limit", "[routing]") {
  ConnectionLimiter limiter(1, 0);
  CHECK(limiter.acquire(nullptr).admit == Admit::kConnect);
  CHECK(limiter.acquire(nullptr).admit == Admit::kOverflow);
  limiter.release();
  CHECK(limiter.acquire(nullptr).admit == Admit::kConnect);
}

TEST_CASE("connection limiter: waiters are served in order and cancelled ones skipped",
          "[routing]") {
  ConnectionLimiter limiter(1, 3);
  std::vector<int> order;
  REQUIRE(limiter.acquire(nullptr).admit == Admit::kConnect);
  auto a = limiter.acquire([&] { order.push_back(1); });
  auto b = limiter.acquire([&] { order.push_back(2); });
  auto c = limiter.acquire([&] { order.push_back(3); });
  REQUIRE(c.admit == Admit::kWait);
  limiter.cancel(b.ticket);  // queued: just leaves
  CHECK(limiter.waiting() == 2);
  limiter.release();  // -> a
  CHECK(order == std::vector<int>{1});
  // a was granted but gives up before claiming: the slot goes on to c, not back to the pool.
  limiter.cancel(a.ticket);
  CHECK(order == std::vector<int>{1, 3});
  CHECK_FALSE(limiter.claim(a.ticket));
  CHECK_FALSE(limiter.claim(b.ticket));
  CHECK(limiter.claim(c.ticket));
  CHECK(limiter.connections() == 1);
  // A new request does not jump the queue.
  auto d = limiter.acquire([&] { order.push_back(4); });
  CHECK(d.admit == Admit::kWait);
  limiter.release();
  CHECK(order == std::vector<int>{1, 3, 4});
  limiter.cancel(d.ticket);  // granted, never claimed: slot freed
  CHECK(limiter.connections() == 0);
  CHECK(limiter.acquire(nullptr).admit == Admit::kConnect);
}

TEST_CASE("connection limiter: threads never hold more than the limit", "[routing]") {
  ConnectionLimiter limiter(3, 1000);
  std::atomic<int> open{0};
  std::atomic<int> max_open{0};
  std::atomic<int> served{0};
  std::atomic<int> failures{0};  // Catch2 assertions are not thread-safe: counted here
  auto use = [&] {
    int now = ++open;
    int seen = max_open.load();
    while (now > seen && !max_open.compare_exchange_weak(seen, now)) {
    }
    --open;
    ++served;
    limiter.release();
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        std::atomic<bool> done{false};
        auto admission = limiter.acquire([&] { done = true; });
        if (admission.admit == Admit::kWait) {
          // Bounded wait for the grant (pollUntil: Catch2 assertions stay on the main thread).
          if (!ferry::testing::pollUntil([&] { return done.load(); }, std::chrono::seconds(10))) {
            ++failures;
            continue;
          }
          if (!limiter.claim(admission.ticket)) {
            ++failures;
            continue;
          }
        }
        if (admission.admit == Admit::kOverflow) {
          ++failures;
          continue;
        }
        use();
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(failures == 0);
  CHECK(served == 8000);
  CHECK(max_open <= 3);
  CHECK(limiter.connections() == 0);
  CHECK(limiter.overflows() == 0);
}

}  // namespace
}  // namespace ferry::routing
