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
                                 .no_route = load(s->no_route),
                                 .mirrors = load(s->mirrors),
                                 .mirror_errors = load(s->mirror_errors),
                                 .mirror_dropped_body = load(s->mirror_dropped_body),
                                 .mirror_dropped_overload = load(s->mirror_dropped_overload),
                                 .mirror_dropped_unavailable = load(s->mirror_dropped_unavailable)};
  }
  return out;
}

}  // namespace ferry::routing
