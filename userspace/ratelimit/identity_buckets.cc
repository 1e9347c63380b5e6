// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "ratelimit/identity_buckets.h"

#include <algorithm>
#include <functional>

namespace ferry::ratelimit {

IdentityBuckets::IdentityBuckets(uint32_t rate, uint32_t burst, size_t max_identities, Nanos now)
    : rate_(rate),
      burst_(burst),
      per_shard_(std::max<size_t>(1, max_identities / kShards)),
      overflow_(rate, burst, now) {}

Take IdentityBuckets::take(std::string_view identity, Nanos now) {
  Shard& shard = shards_[std::hash<std::string_view>{}(identity) % kShards];
  absl::MutexLock lock(&shard.mu);
  auto it = shard.buckets.find(absl::string_view(identity.data(), identity.size()));
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= per_shard_) {
      absl::erase_if(shard.buckets, [now](const auto& kv) { return kv.second->idle(now); });
    }
    if (shard.buckets.size() >= per_shard_) {
      overflowed_.fetch_add(1, std::memory_order_relaxed);
      return overflow_.take(now);
    }
    it = shard.buckets
             .emplace(std::string(identity), std::make_unique<TokenBucket>(rate_, burst_, now))
             .first;
  }
  return it->second->take(now);
}

size_t IdentityBuckets::size() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    n += shard.buckets.size();
  }
  return n;
}

}  // namespace ferry::ratelimit
