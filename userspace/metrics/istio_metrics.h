// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Istio's standard metrics (names, labels and histogram buckets as Istio documents them).

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace ferry::metrics {

enum class Reporter { kSource, kDestination };

// Who talked to whom. Empty values are exported as "unknown", as Istio does. Views: what they
// point into must outlive only the openConnection() or recordRequest() call they are passed to
// (a report builds them from its own data without copying it).
struct PeerLabels {
  std::string_view workload;
  std::string_view workload_namespace;
  std::string_view principal;  // SPIFFE ID
  std::string_view app;
  std::string_view version;
  std::string_view cluster;             // source_cluster / destination_cluster
  std::string_view canonical_service;   // service.istio.io/canonical-name and its fallbacks
  std::string_view canonical_revision;  // service.istio.io/canonical-revision and its fallbacks
};

struct ConnectionLabels {
  Reporter reporter = Reporter::kDestination;
  PeerLabels source;
  PeerLabels destination;
  std::string_view destination_service;  // FQDN, e.g. web.demo.svc.cluster.local
  std::string_view destination_service_name;
  std::string_view destination_service_namespace;
  std::string_view request_protocol = "tcp";  // tcp | http | grpc
  bool mutual_tls = true;                     // connection_security_policy
  std::string_view response_flags = "-";
};

struct RequestOutcome {
  int response_code = 0;
  int grpc_status = -1;  // -1: not gRPC
  double duration_ms = 0;
  uint64_t request_bytes = 0;  // body only, as Istio's istio_request_bytes
  uint64_t response_bytes = 0;
};

struct MetricsLimits {
  size_t max_label_sets = 10000;  // per family; beyond it, samples fold into "overflow"
};

// Counters one TCP connection updates; looked up once when the connection opens.
struct TcpConnectionMetrics {
  // Istio's directions: "sent" during the response (to the source), "received" during the
  // request (from the source), whichever side reports.
  prometheus::Counter* sent = nullptr;
  prometheus::Counter* received = nullptr;
  prometheus::Counter* closed = nullptr;
  void addSent(uint64_t bytes) { sent->Increment(static_cast<double>(bytes)); }
  void addReceived(uint64_t bytes) { received->Increment(static_cast<double>(bytes)); }
  void close() { closed->Increment(); }
};

class IstioMetrics {
 public:
  explicit IstioMetrics(std::shared_ptr<prometheus::Registry> registry, MetricsLimits limits = {});

  // Counts istio_tcp_connections_opened_total and returns the connection's counters.
  TcpConnectionMetrics openConnection(const ConnectionLabels& labels);
  // istio_requests_total, istio_request_duration_milliseconds, istio_request_bytes,
  // istio_response_bytes.
  void recordRequest(const ConnectionLabels& labels, const RequestOutcome& outcome);

  // Label sets folded into "overflow" so far, per family name.
  uint64_t droppedLabelSets(const std::string& family) const;

 private:
  // True when `labels` may have its own child in `family`; counts a drop otherwise.
  bool admit(const std::string& family, const prometheus::Labels& labels);

  std::shared_ptr<prometheus::Registry> registry_;
  MetricsLimits limits_;
  prometheus::Family<prometheus::Counter>& tcp_opened_;
  prometheus::Family<prometheus::Counter>& tcp_closed_;
  prometheus::Family<prometheus::Counter>& tcp_sent_;
  prometheus::Family<prometheus::Counter>& tcp_received_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Histogram>& request_bytes_;
  prometheus::Family<prometheus::Histogram>& response_bytes_;
  prometheus::Family<prometheus::Counter>& dropped_;

  // The four children one request updates, for a label set every family admitted.
  struct RequestChildren {
    prometheus::Counter* requests = nullptr;
    prometheus::Histogram* duration = nullptr;
    prometheus::Histogram* request_bytes = nullptr;
    prometheus::Histogram* response_bytes = nullptr;
  };

  struct TcpChildren {
    prometheus::Counter* opened = nullptr;
    prometheus::Counter* sent = nullptr;
    prometheus::Counter* received = nullptr;
    prometheus::Counter* closed = nullptr;
  };

  mutable absl::Mutex mu_;
  // family name -> the label sets (serialized) admitted so far
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> admitted_ ABSL_GUARDED_BY(mu_);
  // requestKey() -> children: a request whose label set is known skips building the label map,
  // admission and Family::Add (which hashes the whole map under the family's lock). Children
  // are never removed from a family, so the pointers stay valid.
  absl::flat_hash_map<std::string, RequestChildren> request_children_ ABSL_GUARDED_BY(mu_);
  // connectionKey() -> the four TCP children, the same way, for every connection opened.
  absl::flat_hash_map<std::string, TcpChildren> tcp_children_ ABSL_GUARDED_BY(mu_);
};

// The label map Istio exports for a connection (without response_code / grpc status).
prometheus::Labels istioLabels(const ConnectionLabels& labels);

}  // namespace ferry::metrics
