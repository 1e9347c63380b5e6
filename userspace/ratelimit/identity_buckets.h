// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// One token bucket per client identity, bounded: a shard's buckets that are full again are
// dropped when it needs room (a full bucket is the same as a new one, so nothing is forgotten),
// and when every bucket of a shard is still busy a new identity takes the shared overflow bucket
// (same rate): the map never grows past its cap and never gives anyone more than the rate.

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "ratelimit/token_bucket.h"

namespace ferry::ratelimit {

class IdentityBuckets {
 public:
  static constexpr size_t kShards = 16;
  IdentityBuckets(uint32_t rate, uint32_t burst, size_t max_identities, Nanos now);

  // Takes a token from `identity`'s bucket. Thread-safe (one lock per shard of identities).
  Take take(std::string_view identity, Nanos now);
  size_t size() const;
  // Takes that used the overflow bucket because a shard was full of busy buckets.
  uint64_t overflowed() const { return overflowed_.load(std::memory_order_relaxed); }

 private:
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<std::string, std::unique_ptr<TokenBucket>> buckets ABSL_GUARDED_BY(mu);
  };
  uint32_t rate_, burst_;
  size_t per_shard_;
  std::array<Shard, kShards> shards_;
  TokenBucket overflow_;
  std::atomic<uint64_t> overflowed_{0};
};

}  // namespace ferry::ratelimit
