// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"

// Per-route counters, exported by the agent as ferry_route_* metrics. They live outside the
// route table so that a table swap (every snapshot) does not reset them.
namespace ferry::routing {

struct RouteStats {
  std::atomic<uint64_t> requests{0}, retries{0}, timeouts{0}, ejections{0}, overflows{0},
      faults_injected{0}, no_route{0};
  // RequestMirror: copies sent; sent copies that got no whole response (mirror down, refused,
  // reset, timed out); copies chosen but not sent, by reason.
  std::atomic<uint64_t> mirrors{0}, mirror_errors{0}, mirror_dropped_body{0},
      mirror_dropped_overload{0}, mirror_dropped_unavailable{0};
};

// A plain copy of RouteStats, for export.
struct RouteStatsValues {
  uint64_t requests = 0, retries = 0, timeouts = 0, ejections = 0, overflows = 0,
           faults_injected = 0, no_route = 0;
  uint64_t mirrors = 0, mirror_errors = 0, mirror_dropped_body = 0, mirror_dropped_overload = 0,
           mirror_dropped_unavailable = 0;
};

// Counters by route name ("ns/name"). get() is called once per request on the data path: the
// returned pointer stays valid for the registry's lifetime, so workers may cache it.
class RouteStatsRegistry {
 public:
  RouteStats& get(const std::string& route);
  // Every route's counters, sorted by route name (the scrape callback).
  std::map<std::string, RouteStatsValues> snapshot() const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<RouteStats>> stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::routing
