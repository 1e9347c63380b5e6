// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Token-bucket math on a fake clock: burst, refill, Retry-After, refunds, a rate that does not
// divide a second, exactness when two threads share one bucket, and the identity map's bound.
#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <string_view>
#include <thread>
#include <vector>

#include "ratelimit/identity_buckets.h"
#include "ratelimit/token_bucket.h"

namespace ferry::ratelimit {
namespace {

constexpr Nanos kMs = 1'000'000;

int takeAll(TokenBucket& b, Nanos now, int attempts) {
  int allowed = 0;
  for (int i = 0; i < attempts; ++i) {
    allowed += b.take(now).allowed ? 1 : 0;
  }
  return allowed;
}

TEST_CASE("a full bucket admits its burst, then one token per interval", "[ratelimit]") {
  Nanos now = 5 * kSecond;
  TokenBucket b(10, 4, now);  // 10/s: one token per 100 ms
  CHECK(b.interval() == 100 * kMs);
  CHECK(takeAll(b, now, 10) == 4);
  Take refused = b.take(now);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.retry_after == 100 * kMs);
  CHECK(b.take(now + 99 * kMs).retry_after == 1 * kMs);
  CHECK(takeAll(b, now + 100 * kMs, 3) == 1);
  // A quiet second refills to the burst, never beyond it.
  now += 10 * kSecond;
  CHECK(b.idle(now));
  CHECK(takeAll(b, now, 100) == 4);
}

TEST_CASE("over any window a bucket admits at most burst + rate x elapsed", "[ratelimit]") {
  for (uint32_t rate : {1u, 3u, 7u, 50u, 1000u}) {
    for (uint32_t burst : {1u, 5u, 64u}) {
      const Nanos start = kSecond;
      TokenBucket b(rate, burst, start);
      // Offered far above the rate, one attempt a millisecond for 3 s.
      int allowed = 0;
      Nanos t = start;
      for (; t <= start + 3 * kSecond; t += kMs) {
        allowed += takeAll(b, t, 4);
      }
      const Nanos elapsed = t - kMs - start;
      const int64_t bound = burst + (elapsed / b.interval());
      INFO("rate " << rate << " burst " << burst);
      CHECK(allowed == bound);  // at most, and with the bucket kept busy exactly that
    }
  }
}

TEST_CASE("a refund returns exactly one token", "[ratelimit]") {
  TokenBucket b(1, 2, 0);
  CHECK(takeAll(b, 0, 5) == 2);
  b.refund();
  CHECK(takeAll(b, 0, 5) == 1);
}

TEST_CASE("a rate of zero admits nothing", "[ratelimit]") {
  TokenBucket b(0, 0, 0);
  CHECK(takeAll(b, 0, 10) == 0);
  Take t = b.take(100 * kSecond);
  CHECK_FALSE(t.allowed);
  CHECK(t.retry_after == kSecond);
}

TEST_CASE("two threads sharing one bucket together get exactly its budget", "[ratelimit]") {
  // Each phase fixes the clock, so its budget is known exactly; two threads race for it with
  // far more attempts than tokens. A lost update would admit more, a spurious refusal fewer.
  TokenBucket b(1000, 5000, 0);  // one token a millisecond, 5000 at once
  auto race = [&](Nanos now) {
    std::atomic<int> allowed{0};
    auto worker = [&] {
      for (int i = 0; i < 20000; ++i) {
        allowed.fetch_add(b.take(now).allowed ? 1 : 0, std::memory_order_relaxed);
      }
    };
    std::thread a(worker), c(worker);
    a.join();
    c.join();
    return allowed.load();
  };
  CHECK(race(0) == 5000);               // the burst
  CHECK(race(kSecond) == 1000);         // a second's refill
  CHECK(race(kSecond + 7 * kMs) == 7);  // 7 ms of it
  CHECK(race(10 * kSecond) == 5000);    // refilled to the burst, no more
}

TEST_CASE("identity buckets are separate, bounded, and overflow shares one bucket", "[ratelimit]") {
  IdentityBuckets ids(2, 2, /*max_identities=*/IdentityBuckets::kShards, 0);  // one per shard
  // A flooder does not take another identity's tokens.
  int flood = 0;
  for (int i = 0; i < 100; ++i) {
    flood += ids.take("spiffe://td/ns/a/sa/flood", 0).allowed ? 1 : 0;
  }
  CHECK(flood == 2);
  CHECK(ids.take("spiffe://td/ns/a/sa/quiet", 0).allowed);
  // Many identities: the map never holds more than its cap, and the ones that find their shard
  // full of busy buckets share the overflow bucket (2 tokens in all at this instant).
  IdentityBuckets many(2, 2, IdentityBuckets::kShards, 0);
  int admitted = 0;
  for (int i = 0; i < 1000; ++i) {
    admitted += many.take("id-" + std::to_string(i), 0).allowed ? 1 : 0;
  }
  CHECK(many.size() == IdentityBuckets::kShards);  // 1000 names fill every shard
  CHECK(many.overflowed() == 1000 - IdentityBuckets::kShards);
  CHECK(admitted == static_cast<int>(IdentityBuckets::kShards) + 2);  // one each + overflow's 2
  // Once they are full again, buckets give way to new identities (no overflow needed).
  const uint64_t overflowed = many.overflowed();
  int later = 0;
  std::set<size_t> shards_hit;  // the shard function of identity_buckets.cc
  constexpr size_t kLater = IdentityBuckets::kShards * 4;
  for (size_t i = 0; i < kLater; ++i) {
    const std::string name = "later-" + std::to_string(i);
    shards_hit.insert(std::hash<std::string_view>{}(name) % IdentityBuckets::kShards);
    later += many.take(name, 10 * kSecond).allowed ? 1 : 0;
  }
  CHECK(many.size() == IdentityBuckets::kShards);
  // In each shard it reaches, a newcomer replaces the idle bucket; the next ones there find it
  // busy and share the (refilled) overflow bucket.
  CHECK(many.overflowed() == overflowed + kLater - shards_hit.size());
  CHECK(later == static_cast<int>(shards_hit.size()) + 2);
}

}  // namespace
}  // namespace ferry::ratelimit
