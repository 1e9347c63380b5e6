// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// RateLimitPolicy enforcement on the destination agent (model::RateLimitPolicy). Each policy
// gets, per local pod it applies to (Linkerd's limits are per proxy, that is per pod), a total
// bucket, a bounded set of per-identity buckets and one bucket per override; all are shared by
// every worker (ratelimit/token_bucket.h: lock-free, so the budget is exact agent-wide).
//
// A request (HTTP port) or new connection (TCP port) takes a token from the total bucket, then
// from its client's override bucket (by the peer certificate's ServiceAccount) or else its
// identity bucket; a refusal there gives the total token back, so a client refused by its own
// limit never spends the others' budget. Plaintext peers prove no identity: they share one
// identity bucket. When several policies apply, each must admit.
//
// The table of what applies where is rebuilt on every state change (update(), control thread)
// and published as an immutable object; buckets of a policy unchanged for the same pod keep
// their tokens. A Service target whose port cannot be resolved limits every port of its pods
// (never wider than asked).

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "ratelimit/token_bucket.h"

namespace ferry::agent {

struct RateLimitVerdict {
  bool allowed = true;
  std::string policy;  // "ns/name" of the refusing policy
  ratelimit::Nanos retry_after = 0;
  std::string reason;  // for logs and the access log
  // Retry-After in whole seconds, at least 1 (RFC 9110 10.2.3).
  std::string retryAfterSeconds() const;
};

struct RateLimitCount {
  std::string policy;  // "ns/name"
  uint64_t requests = 0;
  uint64_t connections = 0;
};

class RateLimits {
 public:
  using Clock = std::function<ratelimit::Nanos()>;
  static constexpr size_t kDefaultMaxIdentities = 4096;  // per policy and pod
  static ratelimit::Nanos steadyNow();

  explicit RateLimits(Clock clock = steadyNow, size_t max_identities = kDefaultMaxIdentities);
  ~RateLimits();

  // Control thread: what applies to which local pod and port, from the snapshot.
  void update(const model::NodeSnapshot& snapshot);
  // One request (`http`) or new connection from `principal` ("spiffe://td/ns/x/sa/y", empty
  // for plaintext) to local pod `uid` on `port`. Any thread.
  RateLimitVerdict check(const std::string& uid, uint16_t port, std::string_view principal,
                         bool http);
  // Whether any limit counts new connections to local pod `uid` on `port` (the same-node direct
  // path, which the agent does not see, is only for pairs no limit applies to). Any thread.
  bool limits(const std::string& uid, uint16_t port) const;
  // Refusals so far by policy (for ferry_rate_limited_total); one entry per policy ever seen.
  std::vector<RateLimitCount> counts() const;
  // "ns/name: reason" of each refused policy in force as a limit-to-zero stand-in.
  std::vector<std::string> failingClosed() const;

 private:
  struct PolicyBuckets;
  struct Counters;
  struct Table;
  Clock clock_;
  size_t max_identities_;
  std::atomic<std::shared_ptr<const Table>> table_;
  mutable std::mutex counters_mu_;
  std::map<std::string, std::shared_ptr<Counters>> counters_;
};

}  // namespace ferry::agent
