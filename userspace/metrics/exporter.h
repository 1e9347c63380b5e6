// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The Prometheus endpoint (:15020/metrics on an agent): one registry for the Istio families,
// plus sources read at scrape time for Ferry's own internals.

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "metrics/istio_metrics.h"

namespace ferry::metrics {

// One sample of a ferry_ metric, produced at scrape time.
struct Sample {
  std::string name;  // must start with "ferry_"
  std::string help;
  bool counter = true;  // false: gauge
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

using SampleSource = std::function<std::vector<Sample>()>;

class Exporter {
 public:
  // Listens on `address` ("127.0.0.1:0" picks a free port) and serves /metrics.
  static absl::StatusOr<std::unique_ptr<Exporter>> start(const std::string& address,
                                                         MetricsLimits limits = {});
  // Without a listener of its own: the owner serves scrape() (the agent does, from a server
  // that keeps answering when the process is out of descriptors).
  static std::unique_ptr<Exporter> create(MetricsLimits limits = {});
  // The whole page in the Prometheus text format, as /metrics serves it.
  std::string scrape() const;
  static constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";
  ~Exporter();

  IstioMetrics& istio() { return *istio_; }
  prometheus::Registry& registry() { return *registry_; }
  // Adds a source read on every scrape. Samples whose names do not start with "ferry_" are
  // refused at scrape time (and counted as ferry_metrics_bad_samples_total).
  void addSource(SampleSource source);
  int port() const;  // 0 without a listener (create())

 private:
  Exporter() = default;
  class SourceCollectable;

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<IstioMetrics> istio_;
  std::shared_ptr<SourceCollectable> sources_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace ferry::metrics
