// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "metrics/istio_metrics.h"

#include <string_view>

#include "absl/strings/str_cat.h"

namespace ferry::metrics {
namespace {

std::string orUnknown(std::string_view value) {
  return std::string(value.empty() ? "unknown" : value);
}

// Istio's default buckets for istio_request_duration_milliseconds.
const prometheus::Histogram::BucketBoundaries& durationBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.5,  1,    5,     10,    25,    50,     100,    250,     500,    1000,
      2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000};
  return kBuckets;
}

// Istio's default buckets for istio_request_bytes / istio_response_bytes.
const prometheus::Histogram::BucketBoundaries& sizeBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
  return kBuckets;
}

std::string serialize(const prometheus::Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    absl::StrAppend(&out, k, "\x1f", v, "\x1e");
  }
  return out;
}

prometheus::Labels overflowLabels(const prometheus::Labels& labels) {
  prometheus::Labels out;
  for (const auto& [k, v] : labels) {
    out[k] = "overflow";
  }
  return out;
}

void appendKeyPart(std::string& key, std::string_view part) {
  absl::StrAppend(&key, part.size(), ":");
  key += part;
}

void appendPeerKey(std::string& key, const PeerLabels& p) {
  for (std::string_view part : {p.workload, p.workload_namespace, p.principal, p.app, p.version,
                                p.cluster, p.canonical_service, p.canonical_revision}) {
    appendKeyPart(key, part);
  }
}

// Identifies the label set recordRequest() exports, without building it: every input, each
// length-prefixed so that no two different inputs share a key. Without `outcome`: a connection's
// label set, the key of the cached TCP children. Appended to `key`.
void appendConnectionKey(std::string& key, const ConnectionLabels& l,
                         absl::string_view outcome = "") {
  absl::StrAppend(&key, l.reporter == Reporter::kSource ? "s" : "d", l.mutual_tls ? "m" : "p",
                  outcome, "/");
  appendPeerKey(key, l.source);
  appendPeerKey(key, l.destination);
  for (std::string_view part :
       {l.destination_service, l.destination_service_name, l.destination_service_namespace,
        l.request_protocol, l.response_flags}) {
    appendKeyPart(key, part);
  }
}

// The key of a request's label set, built in a buffer each thread keeps: looking up a set
// already cached (nearly every request) allocates nothing.
const std::string& requestKey(const ConnectionLabels& l, const RequestOutcome& o) {
  thread_local std::string key;
  key.clear();
  appendConnectionKey(key, l, absl::StrCat(o.response_code, "/", o.grpc_status));
  return key;
}

}  // namespace

prometheus::Labels istioLabels(const ConnectionLabels& l) {
  return {
      {"reporter", l.reporter == Reporter::kSource ? "source" : "destination"},
      {"source_workload", orUnknown(l.source.workload)},
      {"source_workload_namespace", orUnknown(l.source.workload_namespace)},
      {"source_principal", orUnknown(l.source.principal)},
      {"source_app", orUnknown(l.source.app)},
      {"source_version", orUnknown(l.source.version)},
      {"source_cluster", orUnknown(l.source.cluster)},
      {"source_canonical_service", orUnknown(l.source.canonical_service)},
      {"source_canonical_revision", orUnknown(l.source.canonical_revision)},
      {"destination_workload", orUnknown(l.destination.workload)},
      {"destination_workload_namespace", orUnknown(l.destination.workload_namespace)},
      {"destination_principal", orUnknown(l.destination.principal)},
      {"destination_app", orUnknown(l.destination.app)},
      {"destination_version", orUnknown(l.destination.version)},
      {"destination_cluster", orUnknown(l.destination.cluster)},
      {"destination_canonical_service", orUnknown(l.destination.canonical_service)},
      {"destination_canonical_revision", orUnknown(l.destination.canonical_revision)},
      {"destination_service", orUnknown(l.destination_service)},
      {"destination_service_name", orUnknown(l.destination_service_name)},
      {"destination_service_namespace", orUnknown(l.destination_service_namespace)},
      {"request_protocol", std::string(l.request_protocol)},
      {"response_flags", std::string(l.response_flags)},
      {"connection_security_policy", l.mutual_tls ? "mutual_tls" : "none"},
  };
}

IstioMetrics::IstioMetrics(std::shared_ptr<prometheus::Registry> registry, MetricsLimits limits)
    : registry_(std::move(registry)),
      limits_(limits),
      tcp_opened_(prometheus::BuildCounter()
                      .Name("istio_tcp_connections_opened_total")
                      .Help("TCP connections opened")
                      .Register(*registry_)),
      tcp_closed_(prometheus::BuildCounter()
                      .Name("istio_tcp_connections_closed_total")
                      .Help("TCP connections closed")
                      .Register(*registry_)),
      tcp_sent_(prometheus::BuildCounter()
                    .Name("istio_tcp_sent_bytes_total")
                    .Help("Bytes sent during the response of TCP connections (towards the source)")
                    .Register(*registry_)),
      tcp_received_(
          prometheus::BuildCounter()
              .Name("istio_tcp_received_bytes_total")
              .Help("Bytes received during the request of TCP connections (from the source)")
              .Register(*registry_)),
      requests_(prometheus::BuildCounter()
                    .Name("istio_requests_total")
                    .Help("Requests, by response code")
                    .Register(*registry_)),
      duration_(prometheus::BuildHistogram()
                    .Name("istio_request_duration_milliseconds")
                    .Help("Request duration in milliseconds")
                    .Register(*registry_)),
      request_bytes_(prometheus::BuildHistogram()
                         .Name("istio_request_bytes")
                         .Help("HTTP request body sizes in bytes")
                         .Register(*registry_)),
      response_bytes_(prometheus::BuildHistogram()
                          .Name("istio_response_bytes")
                          .Help("HTTP response body sizes in bytes")
                          .Register(*registry_)),
      dropped_(prometheus::BuildCounter()
                   .Name("ferry_metrics_label_sets_dropped_total")
                   .Help("Samples folded into the overflow label set because a family was full")
                   .Register(*registry_)) {}

bool IstioMetrics::admit(const std::string& family, const prometheus::Labels& labels) {
  std::string key = serialize(labels);
  absl::MutexLock lock(&mu_);
  auto& admitted = admitted_[family];
  if (admitted.contains(key)) {
    return true;
  }
  if (admitted.size() < limits_.max_label_sets) {
    admitted.insert(std::move(key));
    return true;
  }
  dropped_.Add({{"family", family}}).Increment();
  return false;
}

TcpConnectionMetrics IstioMetrics::openConnection(const ConnectionLabels& labels) {
  std::string key;
  key.reserve(512);
  appendConnectionKey(key, labels);
  TcpChildren children;
  bool cached = false;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = tcp_children_.find(key); it != tcp_children_.end()) {
      children = it->second;
      cached = true;
    }
  }
  if (!cached) {
    prometheus::Labels l = istioLabels(labels);
    // Family by family as in recordRequest(): only a set every family admitted is cached.
    bool admitted = true;
    auto add = [&](prometheus::Family<prometheus::Counter>& family) {
      bool ok = admit(family.GetName(), l);
      admitted &= ok;
      return &family.Add(ok ? l : overflowLabels(l));
    };
    children = {add(tcp_opened_), add(tcp_sent_), add(tcp_received_), add(tcp_closed_)};
    if (admitted) {
      absl::MutexLock lock(&mu_);
      if (tcp_children_.size() < limits_.max_label_sets) {
        tcp_children_.emplace(std::move(key), children);
      }
    }
  }
  children.opened->Increment();
  return {children.sent, children.received, children.closed};
}

void IstioMetrics::recordRequest(const ConnectionLabels& labels, const RequestOutcome& outcome) {
  const std::string& key = requestKey(labels, outcome);
  RequestChildren children;
  bool cached = false;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = request_children_.find(key); it != request_children_.end()) {
      children = it->second;
      cached = true;
    }
  }
  if (!cached) {
    prometheus::Labels l = istioLabels(labels);
    l["response_code"] = std::to_string(outcome.response_code);
    l["grpc_response_status"] = outcome.grpc_status < 0 ? "" : std::to_string(outcome.grpc_status);
    // Family by family, remembering whether each admitted the set (admit() counts a drop):
    // only a set all four admitted is cached (an overflowed one must count its drops each time).
    bool admitted = true;
    auto pick = [&](const std::string& family) -> prometheus::Labels {
      bool ok = admit(family, l);
      admitted &= ok;
      return ok ? l : overflowLabels(l);
    };
    children.requests = &requests_.Add(pick(requests_.GetName()));
    children.duration = &duration_.Add(pick(duration_.GetName()), durationBuckets());
    children.request_bytes = &request_bytes_.Add(pick(request_bytes_.GetName()), sizeBuckets());
    children.response_bytes = &response_bytes_.Add(pick(response_bytes_.GetName()), sizeBuckets());
    if (admitted) {
      absl::MutexLock lock(&mu_);
      if (request_children_.size() < limits_.max_label_sets) {
        request_children_.emplace(key, children);
      }
    }
  }
  children.requests->Increment();
  children.duration->Observe(outcome.duration_ms);
  children.request_bytes->Observe(static_cast<double>(outcome.request_bytes));
  children.response_bytes->Observe(static_cast<double>(outcome.response_bytes));
}

uint64_t IstioMetrics::droppedLabelSets(const std::string& family) const {
  for (const auto& mf : registry_->Collect()) {
    if (mf.name != "ferry_metrics_label_sets_dropped_total") {
      continue;
    }
    for (const auto& m : mf.metric) {
      if (!m.label.empty() && m.label[0].value == family) {
        return static_cast<uint64_t>(m.counter.value);
      }
    }
  }
  return 0;
}

}  // namespace ferry::metrics
