// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "metrics/exporter.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace ferry::metrics {

class Exporter::SourceCollectable : public prometheus::Collectable {
 public:
  void add(SampleSource source) {
    absl::MutexLock lock(&mu_);
    sources_.push_back(std::move(source));
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<SampleSource> sources;
    {
      absl::MutexLock lock(&mu_);
      sources = sources_;
    }
    std::map<std::string, prometheus::MetricFamily> families;
    double bad = 0;
    for (const SampleSource& source : sources) {
      for (Sample& s : source()) {
        if (!absl::StartsWith(s.name, "ferry_")) {
          ++bad;
          continue;
        }
        prometheus::MetricFamily& f = families[s.name];
        f.name = s.name;
        f.help = s.help;
        f.type = s.counter ? prometheus::MetricType::Counter : prometheus::MetricType::Gauge;
        prometheus::ClientMetric m;
        for (auto& [k, v] : s.labels) {
          m.label.push_back({k, v});
        }
        if (s.counter) {
          m.counter.value = s.value;
        } else {
          m.gauge.value = s.value;
        }
        f.metric.push_back(std::move(m));
      }
    }
    prometheus::MetricFamily badf;
    badf.name = "ferry_metrics_bad_samples_total";
    badf.help = "Samples refused at scrape time because their name lacks the ferry_ prefix";
    badf.type = prometheus::MetricType::Counter;
    prometheus::ClientMetric m;
    m.counter.value = bad;
    badf.metric.push_back(m);
    std::vector<prometheus::MetricFamily> out;
    for (auto& [name, f] : families) {
      out.push_back(std::move(f));
    }
    out.push_back(std::move(badf));
    return out;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<SampleSource> sources_;
};

std::unique_ptr<Exporter> Exporter::create(MetricsLimits limits) {
  std::unique_ptr<Exporter> e(new Exporter());
  e->registry_ = std::make_shared<prometheus::Registry>();
  e->istio_ = std::make_unique<IstioMetrics>(e->registry_, limits);
  e->sources_ = std::make_shared<SourceCollectable>();
  return e;
}

std::string Exporter::scrape() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (prometheus::MetricFamily& f : sources_->Collect()) {
    families.push_back(std::move(f));
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

absl::StatusOr<std::unique_ptr<Exporter>> Exporter::start(const std::string& address,
                                                          MetricsLimits limits) {
  std::unique_ptr<Exporter> e = create(limits);
  try {
    // prometheus-cpp reports a failed bind by throwing; keep that inside this boundary.
    e->exposer_ = std::make_unique<prometheus::Exposer>(address, 1);
  } catch (const std::exception& ex) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", ex.what()));
  }
  e->exposer_->RegisterCollectable(e->registry_);
  e->exposer_->RegisterCollectable(e->sources_);
  return e;
}

Exporter::~Exporter() = default;

void Exporter::addSource(SampleSource source) {
  sources_->add(std::move(source));
}

int Exporter::port() const {
  if (!exposer_) {
    return 0;
  }
  std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace ferry::metrics
