// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// `ferryctl stat`'s arithmetic on scraped Istio metrics: the Prometheus text format, counter
// deltas between two scrapes, and histogram quantiles computed as PromQL's
// histogram_quantile() computes them (so a figure from the agents and one from a Prometheus
// server agree).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::cli {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// The samples of a text-format page (version 0.0.4). Comments and blank lines are skipped; a
// malformed sample line is an error naming its line number.
absl::StatusOr<std::vector<PromSample>> parsePromText(std::string_view text);

// One bucket of a cumulative histogram: observations <= upper.
struct Bucket {
  double upper = 0;
  double count = 0;
};

// PromQL's histogram_quantile(q, buckets): linear interpolation inside the bucket holding the
// rank, the first bucket starting at 0, the highest finite bound when the rank falls in +Inf.
// NaN without observations or without a +Inf bucket; -Inf / +Inf for q < 0 / q > 1.
double histogramQuantile(double q, std::vector<Bucket> buckets);

// Rows of `ferryctl stat`: per destination workload or per destination Service.
enum class StatBy { kWorkload, kService };

struct StatOptions {
  StatBy by = StatBy::kService;
  std::string ns;                        // empty: every namespace
  std::string reporter = "destination";  // whose view: destination or source
};

struct StatRow {
  std::string ns;
  std::string name;
  double requests = 0;                  // in the window
  double failures = 0;                  // 5xx, and 0 (no response)
  double seconds = 0;                   // the window
  std::optional<double> p50, p95, p99;  // ms
  double tcp_opened = 0;                // in the window
  double tcp_open = 0;                  // now: opened - closed since the agents started

  double rps() const { return seconds > 0 ? requests / seconds : 0; }
  std::optional<double> successRate() const {
    return requests > 0 ? std::optional<double>((requests - failures) / requests) : std::nullopt;
  }
};

// A scrape of every agent: samples tagged with the agent they came from (series of two agents
// never merge before their deltas are taken).
struct Scrape {
  std::map<std::string, std::vector<PromSample>> by_agent;
};

// Rows from two scrapes `seconds` apart: counter deltas per series (a counter that went down
// restarted: its new value is the delta), summed per row. Sorted by namespace and name.
std::vector<StatRow> statRows(const Scrape& before, const Scrape& after, double seconds,
                              const StatOptions& options);

// The labels that name a row, for each StatBy ({namespace label, name label}).
std::pair<std::string, std::string> rowLabels(StatBy by);

// A response code that counts as a failure: 5xx, or 0 (the agent sent no response).
bool isFailureCode(std::string_view response_code);

}  // namespace ferry::cli
