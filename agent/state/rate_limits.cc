// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/state/rate_limits.h"

#include <chrono>
#include <optional>
#include <set>

#include "log/log.h"
#include "policy/text.h"
#include "ratelimit/identity_buckets.h"

namespace ferry::agent {

using ratelimit::Nanos;
using ratelimit::Take;
using ratelimit::TokenBucket;

std::string RateLimitVerdict::retryAfterSeconds() const {
  const Nanos seconds = (retry_after + ratelimit::kSecond - 1) / ratelimit::kSecond;
  return std::to_string(std::max<Nanos>(1, seconds));
}

Nanos RateLimits::steadyNow() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct RateLimits::Counters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> connections{0};
};

// The buckets of one policy for one pod.
struct RateLimits::PolicyBuckets {
  PolicyBuckets(const model::RateLimitPolicy& p, size_t max_identities, Nanos now) : policy(p) {
    if (p.total) {
      total = std::make_unique<TokenBucket>(p.total->requests_per_second, p.total->burst, now);
    }
    if (p.identity) {
      identities = std::make_unique<ratelimit::IdentityBuckets>(
          p.identity->requests_per_second, p.identity->burst, max_identities, now);
    }
    for (const model::RateLimitOverride& o : p.overrides) {
      overrides.push_back(
          std::make_unique<TokenBucket>(o.limit.requests_per_second, o.limit.burst, now));
      for (const model::ObjectKey& sa : o.service_accounts) {
        override_by_sa.emplace(sa.ns + "/sa/" + sa.name, overrides.back().get());
      }
    }
  }

  Take take(std::string_view principal, Nanos now) {
    if (total) {
      if (Take t = total->take(now); !t.allowed) {
        return t;
      }
    }
    Take t{true, 0};
    if (TokenBucket* o = overrideFor(principal)) {
      t = o->take(now);
    } else if (identities) {
      t = identities->take(principal, now);
    }
    if (!t.allowed && total) {
      total->refund();
    }
    return t;
  }

  // The override bucket of the peer certificate's ServiceAccount, if any: looked up by the
  // "<ns>/sa/<sa>" tail of "spiffe://<td>/ns/<ns>/sa/<sa>", without building a string.
  TokenBucket* overrideFor(std::string_view principal) const {
    if (override_by_sa.empty()) {
      return nullptr;
    }
    const size_t ns_at = principal.find("/ns/");
    if (ns_at == std::string_view::npos) {
      return nullptr;
    }
    auto it = override_by_sa.find(principal.substr(ns_at + 4));
    return it == override_by_sa.end() ? nullptr : it->second;
  }

  const model::RateLimitPolicy policy;
  std::unique_ptr<TokenBucket> total;
  std::unique_ptr<ratelimit::IdentityBuckets> identities;
  std::vector<std::unique_ptr<TokenBucket>> overrides;
  std::map<std::string, TokenBucket*, std::less<>> override_by_sa;  // "<ns>/sa/<sa>"
  std::shared_ptr<Counters> counters;
};

struct RateLimits::Table {
  struct Applied {
    std::shared_ptr<PolicyBuckets> buckets;
    std::set<uint16_t> ports;  // empty: every port
  };
  std::map<std::string, std::vector<Applied>> by_uid;
};

namespace {

// The ports of `w` that `p` limits: nullopt when it does not apply to `w`, an empty set for
// every port.
std::optional<std::set<uint16_t>> limitedPorts(const model::NodeSnapshot& snap,
                                               const model::RateLimitPolicy& p,
                                               const model::Workload& w) {
  if (p.key.ns != w.key.ns) {
    return std::nullopt;
  }
  if (p.target_service.empty()) {
    if (p.selector && !model::labelsMatch(*p.selector, w.labels)) {
      return std::nullopt;
    }
    return std::set<uint16_t>(p.ports.begin(), p.ports.end());
  }
  const model::Service* svc = nullptr;
  for (const model::Service& s : snap.services) {
    if (s.key == model::ObjectKey{p.key.ns, p.target_service}) {
      svc = &s;
    }
  }
  if (svc == nullptr || svc->selector.empty() || !model::labelsMatch(svc->selector, w.labels)) {
    return std::nullopt;  // no such Service, or not one of its pods
  }
  const model::ServiceEndpoints* eps = nullptr;
  for (const model::ServiceEndpoints& e : snap.endpoints) {
    if (e.service == svc->key) {
      eps = &e;
    }
  }
  std::set<uint16_t> ports;
  for (const model::ServicePort& sp : svc->ports) {
    if (p.service_port != 0 && sp.port != p.service_port) {
      continue;
    }
    uint16_t target = sp.target_port != 0 ? sp.target_port : sp.port;
    if (!sp.target_port_name.empty()) {
      auto named = eps != nullptr ? eps->named_ports.find(sp.name)
                                  : std::map<std::string, uint16_t>::const_iterator{};
      if (eps == nullptr || named == eps->named_ports.end() || named->second == 0) {
        return std::set<uint16_t>{};  // unresolvable: every port, never wider than asked
      }
      target = named->second;
    }
    ports.insert(target);
  }
  return ports;  // no such Service port: empty, every port
}

}  // namespace

RateLimits::RateLimits(Clock clock, size_t max_identities)
    : clock_(std::move(clock)),
      max_identities_(max_identities),
      table_(std::make_shared<const Table>()) {}

RateLimits::~RateLimits() = default;

void RateLimits::update(const model::NodeSnapshot& snap) {
  const std::vector<std::string> was = failingClosed();
  std::shared_ptr<const Table> old = table_.load();
  auto next = std::make_shared<Table>();
  const Nanos now = clock_();
  for (const model::Workload& w : snap.workloads) {
    if (w.node != snap.node || !w.mesh_enabled) {
      continue;
    }
    for (const model::RateLimitPolicy& p : snap.rate_limits) {
      std::optional<std::set<uint16_t>> ports = limitedPorts(snap, p, w);
      if (!ports) {
        continue;
      }
      std::shared_ptr<PolicyBuckets> buckets;
      if (auto it = old->by_uid.find(w.uid); it != old->by_uid.end()) {
        for (const Table::Applied& a : it->second) {
          if (a.buckets->policy == p) {
            buckets = a.buckets;  // unchanged: keeps its tokens
          }
        }
      }
      if (!buckets) {
        buckets = std::make_shared<PolicyBuckets>(p, max_identities_, now);
        std::lock_guard lock(counters_mu_);
        auto& c = counters_[p.key.str()];
        if (!c) {
          c = std::make_shared<Counters>();
        }
        buckets->counters = c;
      }
      next->by_uid[w.uid].push_back({std::move(buckets), *std::move(ports)});
    }
  }
  table_.store(std::move(next));
  const std::vector<std::string> now_failing = failingClosed();
  for (const std::string& p : now_failing) {
    if (std::find(was.begin(), was.end(), p) == was.end()) {
      LOG_WARN("RateLimitPolicy ", p, ": refused; its target is limited to zero until it is fixed");
    }
  }
}

RateLimitVerdict RateLimits::check(const std::string& uid, uint16_t port,
                                   std::string_view principal, bool http) {
  std::shared_ptr<const Table> table = table_.load();
  auto it = table->by_uid.find(uid);
  if (it == table->by_uid.end()) {
    return {};
  }
  const Nanos now = clock_();
  for (const Table::Applied& a : it->second) {
    if (!a.ports.empty() && a.ports.count(port) == 0) {
      continue;
    }
    Take t = a.buckets->take(principal, now);
    if (t.allowed) {
      continue;
    }
    (http ? a.buckets->counters->requests : a.buckets->counters->connections)
        .fetch_add(1, std::memory_order_relaxed);
    RateLimitVerdict v;
    v.allowed = false;
    v.policy = a.buckets->policy.key.str();
    v.retry_after = t.retry_after;
    v.reason = a.buckets->policy.refused.empty()
                   ? text::cat("rate limited by ", v.policy)
                   : text::cat("rate limited to zero by refused ", v.policy, ": ",
                               a.buckets->policy.refused);
    return v;
  }
  return {};
}

bool RateLimits::limits(const std::string& uid, uint16_t port) const {
  std::shared_ptr<const Table> table = table_.load();
  auto it = table->by_uid.find(uid);
  if (it == table->by_uid.end()) {
    return false;
  }
  for (const Table::Applied& a : it->second) {
    if (a.ports.empty() || a.ports.count(port) != 0) {
      return true;
    }
  }
  return false;
}

std::vector<RateLimitCount> RateLimits::counts() const {
  std::lock_guard lock(counters_mu_);
  std::vector<RateLimitCount> out;
  for (const auto& [policy, c] : counters_) {
    out.push_back({policy, c->requests.load(), c->connections.load()});
  }
  return out;
}

std::vector<std::string> RateLimits::failingClosed() const {
  std::shared_ptr<const Table> table = table_.load();
  std::set<std::string> out;
  for (const auto& [uid, applied] : table->by_uid) {
    for (const Table::Applied& a : applied) {
      if (!a.buckets->policy.refused.empty()) {
        out.insert(text::cat(a.buckets->policy.key.str(), ": ", a.buckets->policy.refused));
      }
    }
  }
  return {out.begin(), out.end()};
}

}  // namespace ferry::agent
