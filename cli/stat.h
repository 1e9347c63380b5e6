// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// `ferryctl stat services|workloads`: request rate, success rate, p50/p95/p99 latency and TCP
// connections per destination Service or workload, live from the agents' metrics endpoints
// (two scrapes a window apart) or from a Prometheus server (PromQL over its HTTP API); once,
// or refreshed every window like top (--watch, --count bounds the frames).

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/stat_math.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {

inline constexpr char kDefaultMetrics[] = "127.0.0.1:15020";

struct StatArgs {
  StatOptions options;
  std::vector<std::string> agents;        // metrics endpoints, IPv4:PORT
  std::optional<std::string> prometheus;  // http://IPv4-or-localhost:PORT[/prefix]
  absl::Duration window = absl::Seconds(10);
  bool watch = false;
  int count = 0;  // frames with --watch; 0: until interrupted
  bool json = false;
};

// Checks what the parser cannot: the namespace is a Kubernetes name, the window is >= 1 s,
// the Prometheus URL is http://HOST:PORT[/prefix]. The message is the usage error.
std::optional<std::string> validateStatArgs(const StatArgs& args);

// Runs the command; frames go to `out`, progress and errors to `err`. Returns the exit code.
int runStat(const StatArgs& args, std::ostream& out, std::ostream& err);

nlohmann::json statJson(const std::vector<StatRow>& rows, const StatArgs& args);
std::string statTable(const std::vector<StatRow>& rows, StatBy by);

// The PromQL queries the --prometheus mode asks (exposed for tests).
struct StatQueries {
  std::string requests, failures, p50, p95, p99, tcp_opened, tcp_open;
};
StatQueries statQueries(const StatOptions& options, absl::Duration window);

}  // namespace ferry::cli
