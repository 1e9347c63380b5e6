// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The one place the data path reports what it did: connections (L4) and HTTP requests (L7).
// Each report feeds Istio's standard metrics (userspace/metrics), Ferry's own ferry_ counters
// and the JSON access log (userspace/accesslog), so proxy code never talks to those directly.
//
// Thread-safety: every call may come from any worker thread at once. A ConnectionTelemetry
// belongs to the worker that opened it.
//
// Policy decisions (ferry_policy_decisions_total) are counted from destination-side reports
// only, where policy is enforced.
//
// Denied connections and requests are reported too (with policy.allowed = false): they count
// as policy decisions and get an access-log line, but a denied TCP connection never opens
// istio_tcp_connections_opened_total, because no byte of it reached the destination.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "accesslog/accesslog.h"
#include "agent/admin/admin.h"
#include "metrics/exporter.h"
#include "trace/span.h"
#include "trace/span_exporter.h"

namespace ferry::agent {

enum class TelemetryReporter {
  kSource,       // outbound: the agent of the client pod
  kDestination,  // inbound: the agent of the server pod
};

struct TelemetryPeer {
  std::string workload;   // workload (pod) name; empty: unknown (outside the mesh)
  std::string ns;         // namespace; empty: unknown
  std::string principal;  // "spiffe://td/ns/x/sa/y"; empty for a plaintext or unknown peer
  std::string address;    // "10.244.1.11:8080", "[fd00::1]:80"; may be empty
  std::string app;        // the pod's "app" label (source_app / destination_app)
  std::string version;    // the pod's "version" label
  // Istio's canonical service and revision (telemetry_peers.h derives them from pod labels).
  std::string canonical_service;
  std::string canonical_revision;
  // The peer's cluster as its baggage named it; empty: this agent's cluster when `workload` is
  // known (a pod in this cluster's state), "unknown" otherwise.
  std::string cluster;

  bool operator==(const TelemetryPeer&) const = default;
};

// Which policy decided, and how. Default-constructed: nothing decided (no policy applies).
struct PolicyOutcome {
  enum class Action { kNone, kAllow, kDeny, kAudit };
  bool allowed = true;
  Action action = Action::kNone;  // the deciding policy's action; kNone: no policy decided
  std::string policy;             // "ns/name" of the deciding policy; empty: none
  int rule = -1;                  // index of the deciding rule in that policy; -1: none

  bool operator==(const PolicyOutcome&) const = default;
};

struct ConnectionInfo {
  TelemetryReporter reporter = TelemetryReporter::kDestination;
  TelemetryPeer source;
  TelemetryPeer destination;
  std::string destination_service;  // FQDN "web.default.svc.cluster.local"; empty: a pod
  bool mtls = false;                // connection_security_policy mutual_tls vs none
  PolicyOutcome policy;

  bool operator==(const ConnectionInfo&) const = default;
};

struct ConnectionEnd {
  uint64_t bytes_from_source = 0;  // request direction (Istio: received bytes)
  uint64_t bytes_to_source = 0;    // response direction (Istio: sent bytes)
  bool connect_failed = false;     // the destination never answered ("UF")
  bool reset = false;              // ended by an error or reset
};

struct HttpRequestInfo {
  ConnectionInfo connection;  // peers, mTLS, reporter; connection.policy = the L7 decision
  std::string method;
  std::string path;
  std::string authority;
  std::string protocol = "http";  // "http" or "grpc" (request_protocol)
  int response_code = 0;          // 403 for a policy denial
  int grpc_status = -1;           // -1: not gRPC
  uint64_t request_bytes = 0;     // body bytes
  uint64_t response_bytes = 0;
  absl::Duration duration;
  std::string trace_id;        // 32 hex; empty: no trace
  std::string span_id;         // our span, 16 hex
  std::string parent_span_id;  // the caller's span, 16 hex; empty: we started the trace
  bool trace_sampled = false;  // the span is exported (when an exporter is configured)
  // Istio's upstream cluster: "outbound|80||web.default.svc.cluster.local" at the source,
  // "inbound|8080||" at the destination; empty: none was picked.
  std::string upstream_cluster;
  // False for a request refused before policy ran (malformed): it counts no policy decision.
  bool policy_evaluated = true;
  // Envoy's response flags ("DPE" malformed request, "UC" app connection lost); a policy
  // denial is always "DENY".
  std::string response_flags;
};

class Telemetry;

// One open TCP connection's metrics. Move-only; close() once, when both directions are done
// (destroying an open one closes it as reset). The Telemetry must outlive it.
//
// It holds its peers' addresses and a ConnectionInfo shared with every open connection that has
// the same peers, service and decision (Telemetry interns them): an idle connection is memory
// the agent keeps for as long as the app does, and 20 strings of it were the same in each.
class ConnectionTelemetry {
 public:
  ConnectionTelemetry() = default;
  ConnectionTelemetry(ConnectionTelemetry&& other) noexcept { *this = std::move(other); }
  ConnectionTelemetry& operator=(ConnectionTelemetry&& other) noexcept;
  ~ConnectionTelemetry();

  // Records bytes and duration, counts the close and writes the access-log line.
  void close(const ConnectionEnd& end);
  bool open() const { return telemetry_ != nullptr; }

 private:
  friend class Telemetry;
  Telemetry* telemetry_ = nullptr;
  std::shared_ptr<const ConnectionInfo> info_;  // addresses empty: they are the two below
  std::string source_address_;
  std::string destination_address_;
  metrics::TcpConnectionMetrics counters_;
  std::chrono::steady_clock::time_point started_;
  absl::Time start_time_;
};

struct TelemetryConfig {
  // "": no metrics endpoint (counters are still kept for /stats). "127.0.0.1:0" for tests.
  std::string metrics_address = "0.0.0.0:15020";
  int metrics_fd = -1;  // a listening socket for it handed over by the previous agent, or -1
  accesslog::Config access_log;
  metrics::MetricsLimits limits;
  // source_cluster / destination_cluster of this agent's own cluster (--cluster-name).
  std::string cluster_name = "Kubernetes";
  // Spans to an OTLP/HTTP collector (trace/span_exporter.h); endpoint "": no export.
  trace::ExporterConfig tracing;
  // Share of new traces sampled (a request with a valid traceparent follows its flag).
  double trace_sampling = 0;
};

class Telemetry {
 public:
  // `sink` null: stdout.
  static absl::StatusOr<std::unique_ptr<Telemetry>> create(
      const TelemetryConfig& config, std::shared_ptr<accesslog::Sink> sink = nullptr);
  ~Telemetry();

  // A connection the policy allowed and that is about to be relayed (`info` is taken apart: a
  // temporary moves in without a copy).
  ConnectionTelemetry openConnection(ConnectionInfo info);
  // A connection refused by policy (or STRICT mTLS): a decision and an access-log line.
  void connectionDenied(const ConnectionInfo& info);
  // One HTTP request, allowed or denied, when its response is complete.
  void recordRequest(const HttpRequestInfo& request);

  // Internals read at scrape time (BPF counters, worker stats, certificates, config).
  void addSource(metrics::SampleSource source);
  // 0 when there is no metrics endpoint.
  int metricsPort() const;
  // The metrics endpoint's listening socket (-1: none), to hand over; and stopping it once the
  // next agent serves it.
  int metricsFd() const;
  void stopMetricsServer();
  accesslog::Logger& accessLog() { return *access_log_; }
  // The sampling decision for traces this agent starts (trace_sampling; 0 without export).
  const trace::Sampler& sampler() const { return sampler_; }
  // Null without a trace endpoint.
  trace::SpanExporter* spanExporter() { return spans_.get(); }
  // ConnectionInfos (addresses aside) the open connections share: one per distinct set of
  // peers, service and decision in use; kept includes those no connection holds any more, until
  // the table is next pruned (for tests).
  struct SharedInfoCounts {
    size_t in_use = 0;
    size_t kept = 0;
  };
  SharedInfoCounts sharedConnectionInfos() const;

 private:
  friend class ConnectionTelemetry;
  Telemetry() = default;
  void recordDecision(const ConnectionInfo& info);
  void logConnection(const ConnectionTelemetry& conn, const ConnectionEnd& end);

  std::string cluster_name_;
  std::unique_ptr<metrics::Exporter> exporter_;
  std::unique_ptr<AdminServer> metrics_server_;  // serves exporter_ (after it: stops first)
  std::unique_ptr<accesslog::Logger> access_log_;
  class Decisions;
  std::unique_ptr<Decisions> decisions_;
  class SharedInfos;
  std::unique_ptr<SharedInfos> shared_infos_;
  trace::Sampler sampler_;
  std::unique_ptr<trace::SpanExporter> spans_;
};

}  // namespace ferry::agent
