// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Reading an agent's telemetry in end-to-end tests: scrape its metrics until a counter reaches
// a value (bounded), pick the access-log lines out of its output, and run a real Prometheus
// server (Debian's `prometheus`) against it.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "harness/process.h"

namespace ferry::e2e {

// Scrapes 127.0.0.1:<port>/metrics until the sample `name` with `labels` is at least `value`,
// at most ~10 s (the agent counts a close just after the client returns); returns the last page.
std::string scrapeUntil(uint16_t port, const std::string& name,
                        const std::map<std::string, std::string>& labels, double value);

// The agent's kernel counter `event` (ferry_bpf_events_total, bpf/README.md) from the metrics
// on 127.0.0.1:<port>; -1 when it cannot be read.
double bpfEvent(uint16_t port, const std::string& event);

// The JSON access-log lines in an agent's output (other lines are its log).
std::vector<nlohmann::json> accessLogLines(const std::string& output);

class Prometheus {
 public:
  // Writes a config scraping 127.0.0.1:<target_port> every second into a temp folder under
  // `scratch_dir` and starts the server on a free loopback port.
  static absl::StatusOr<std::unique_ptr<Prometheus>> start(const std::string& scratch_dir,
                                                           uint16_t target_port);
  // The same, scraping every port of `target_ports` (job ferry, one target each).
  static absl::StatusOr<std::unique_ptr<Prometheus>> start(
      const std::string& scratch_dir, const std::vector<uint16_t>& target_ports);
  ~Prometheus();
  // Evaluates an instant query until it returns a result (bounded, ~30 s); the first value of
  // the first series as Prometheus prints it ("5"), or "" when nothing came back.
  std::string queryScalar(const std::string& promql);
  std::string log() const { return process_->log(); }
  // http://127.0.0.1:<port>, for clients such as `ferryctl stat --prometheus`.
  std::string url() const;

 private:
  Prometheus() = default;
  std::string dir_;
  uint16_t port_ = 0;
  std::unique_ptr<harness::Process> process_;
};

}  // namespace ferry::e2e
