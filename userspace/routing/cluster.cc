// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "routing/cluster.h"

#include <algorithm>

#include "absl/random/distributions.h"

namespace ferry::routing {

Cluster::Cluster(std::vector<EndpointRef> endpoints, ClusterOptions options)
    : options_(std::move(options)) {
  update(std::move(endpoints));
}

void Cluster::update(std::vector<EndpointRef> endpoints) {
  absl::MutexLock lock(&mu_);
  std::vector<Endpoint> next;
  next.reserve(endpoints.size());
  for (EndpointRef& ref : endpoints) {
    auto old = std::find_if(endpoints_.begin(), endpoints_.end(), [&](const Endpoint& e) {
      return e.ref.ip == ref.ip && e.ref.port == ref.port;
    });
    Endpoint e = old != endpoints_.end() ? *old : Endpoint{};
    e.ref = std::move(ref);
    next.push_back(std::move(e));
  }
  endpoints_ = std::move(next);
}

void Cluster::candidatesLocked(absl::Time now) {
  candidates_.clear();
  if (!options_.local_zone.empty()) {
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      if (endpoints_[i].ref.zone == options_.local_zone && endpoints_[i].healthy(now)) {
        candidates_.push_back(i);
      }
    }
    if (!candidates_.empty()) {
      return;
    }
  }
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (endpoints_[i].healthy(now)) {
      candidates_.push_back(i);
    }
  }
  if (candidates_.empty()) {
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      candidates_.push_back(i);
    }
  }
}

void Cluster::refuseLocked(PickFailure* failure) {
  overflowed_ = true;
  ++overflows_;
  if (failure != nullptr) {
    *failure = PickFailure::kOverflow;
  }
}

std::optional<Cluster::Pick> Cluster::pick(absl::BitGenRef rng, absl::Time now,
                                           PickFailure* failure) {
  absl::MutexLock lock(&mu_);
  if (failure != nullptr) {
    *failure = PickFailure::kNone;
  }
  if (active_ >= options_.max_requests) {
    refuseLocked(failure);
    return std::nullopt;
  }
  overflowed_ = false;
  candidatesLocked(now);
  if (candidates_.empty()) {
    if (failure != nullptr) {
      *failure = PickFailure::kNoEndpoint;
    }
    return std::nullopt;
  }
  size_t chosen = 0;
  size_t n = candidates_.size();
  if (n == 1) {
    chosen = candidates_[0];
  } else if (options_.lb == LbPolicy::kRoundRobin) {
    chosen = candidates_[rr_next_++ % n];
  } else {
    // Power of two choices: two distinct random candidates, the less loaded one wins.
    size_t a = absl::Uniform<size_t>(rng, 0, n);
    size_t b = absl::Uniform<size_t>(rng, 0, n - 1);
    if (b >= a) {
      ++b;
    }
    size_t ia = candidates_[a];
    size_t ib = candidates_[b];
    chosen = endpoints_[ib].active < endpoints_[ia].active ? ib : ia;
  }
  Endpoint& e = endpoints_[chosen];
  ++e.active;
  ++active_;
  return Pick{.index = chosen, .endpoint = e.ref};
}

size_t Cluster::locateLocked(const Pick& pick) const {
  auto same = [&](const Endpoint& e) {
    return e.ref.ip == pick.endpoint.ip && e.ref.port == pick.endpoint.port;
  };
  if (pick.index < endpoints_.size() && same(endpoints_[pick.index])) {
    return pick.index;
  }
  // update() moved it (or removed it) since the pick.
  auto it = std::find_if(endpoints_.begin(), endpoints_.end(), same);
  return it == endpoints_.end() ? endpoints_.size() : static_cast<size_t>(it - endpoints_.begin());
}

size_t Cluster::ejectedCountLocked(absl::Time now) const {
  return std::count_if(endpoints_.begin(), endpoints_.end(),
                       [now](const Endpoint& e) { return !e.healthy(now); });
}

void Cluster::recordFailureLocked(Endpoint& e, absl::Time now) {
  if (options_.consecutive_errors == 0) {
    return;  // outlier detection off
  }
  ++e.consecutive_errors;
  if (e.consecutive_errors < options_.consecutive_errors || !e.healthy(now)) {
    return;
  }
  // Never more than max_ejection_percent of the endpoints out at once; the endpoint keeps its
  // error count and is ejected by a later failure once others have come back.
  uint64_t after = ejectedCountLocked(now) + 1;
  if (after * 100 > uint64_t{options_.max_ejection_percent} * endpoints_.size()) {
    return;
  }
  ++e.times_ejected;
  e.ejected_until = now + options_.base_ejection * static_cast<int64_t>(e.times_ejected);
  e.consecutive_errors = 0;
  ++ejections_;
}

void Cluster::done(const Pick& pick, Outcome outcome, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (active_ > 0) {
    --active_;
  }
  size_t i = locateLocked(pick);
  if (i == endpoints_.size()) {
    return;  // removed by update(): nothing left to account to
  }
  Endpoint& e = endpoints_[i];
  if (e.active > 0) {
    --e.active;
  }
  if (outcome == Outcome::kSuccess) {
    e.consecutive_errors = 0;
  } else {
    recordFailureLocked(e, now);
  }
}

bool Cluster::overflowed() const {
  absl::MutexLock lock(&mu_);
  return overflowed_;
}

size_t Cluster::healthyCount(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  return endpoints_.size() - ejectedCountLocked(now);
}

uint64_t Cluster::ejectionsTotal() const {
  absl::MutexLock lock(&mu_);
  return ejections_;
}

uint64_t Cluster::overflowsTotal() const {
  absl::MutexLock lock(&mu_);
  return overflows_;
}

size_t Cluster::activeRequests() const {
  absl::MutexLock lock(&mu_);
  return active_;
}

std::vector<EndpointStatus> Cluster::status(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  std::vector<EndpointStatus> out;
  for (const Endpoint& e : endpoints_) {
    out.push_back(EndpointStatus{.endpoint = e.ref,
                                 .active_requests = e.active,
                                 .consecutive_errors = e.consecutive_errors,
                                 .times_ejected = e.times_ejected,
                                 .ejected = !e.healthy(now),
                                 .ejected_until = e.ejected_until});
  }
  return out;
}

}  // namespace ferry::routing
