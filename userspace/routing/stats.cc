// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "routing/stats.h"

namespace ferry::routing {

RouteStats& RouteStatsRegistry::get(const std::string& route) {
  absl::MutexLock lock(&mu_);
  auto& slot = stats_[route];
  if (!slot) {
    slot = std::make_unique<RouteStats>();
  }
  return *slot;
}

std::map<std::string, RouteStatsValues> RouteStatsRegistry::snapshot() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, RouteStatsValues> out;
  for (const auto& [name, s] : stats_) {
    auto load = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
    out[name] = RouteStatsValues{.requests = load(s->requests),
                                 .retries = load(s->retries),
                                 .timeouts = load(s->timeouts),
                                 .ejections = load(s->ejections),
                                 .overflows = load(s->overflows),
                                 .faults_injected = load(s->faults_injected),
                                 .no_route = load(s->no_route)};
  }
  return out;
}

}  // namespace ferry::routing
