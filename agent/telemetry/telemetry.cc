// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/telemetry/telemetry.h"

#include <functional>
#include <map>
#include <string_view>
#include <tuple>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "agent/state/interned.h"
#include "agent/telemetry/telemetry_spans.h"
#include "log/log.h"

namespace ferry::agent {
namespace {

// Policies come from configuration, so their count is bounded by it; the cap only guards against
// a runaway config (thousands of policies) turning into thousands of series.
constexpr size_t kMaxDecisionSeries = 1000;

const char* actionName(PolicyOutcome::Action a) {
  switch (a) {
    case PolicyOutcome::Action::kAllow:
      return "ALLOW";
    case PolicyOutcome::Action::kDeny:
      return "DENY";
    case PolicyOutcome::Action::kAudit:
      return "AUDIT";
    case PolicyOutcome::Action::kNone:
      break;
  }
  return "none";
}

// Views into `p` and `cluster_name` (see metrics::PeerLabels).
metrics::PeerLabels peerLabels(const TelemetryPeer& p, const std::string& cluster_name) {
  std::string_view cluster = p.cluster;
  if (cluster.empty() && !p.workload.empty()) {
    cluster = cluster_name;
  }
  return {.workload = p.workload,
          .workload_namespace = p.ns,
          .principal = p.principal,
          .app = p.app,
          .version = p.version,
          .cluster = cluster,
          .canonical_service = p.canonical_service,
          .canonical_revision = p.canonical_revision};
}

metrics::ConnectionLabels connectionLabels(const ConnectionInfo& info, std::string_view protocol,
                                           std::string_view flags,
                                           const std::string& cluster_name) {
  metrics::ConnectionLabels l;
  l.reporter = info.reporter == TelemetryReporter::kSource ? metrics::Reporter::kSource
                                                           : metrics::Reporter::kDestination;
  l.source = peerLabels(info.source, cluster_name);
  l.destination = peerLabels(info.destination, cluster_name);
  std::string_view service = info.destination_service;
  l.destination_service = service;
  // "name.ns.svc.<domain>": Istio's destination_service_name / _namespace.
  size_t dot1 = service.find('.');
  if (dot1 != std::string_view::npos) {
    l.destination_service_name = service.substr(0, dot1);
    size_t dot2 = service.find('.', dot1 + 1);
    l.destination_service_namespace = service.substr(
        dot1 + 1, dot2 == std::string_view::npos ? std::string_view::npos : dot2 - dot1 - 1);
  }
  l.request_protocol = protocol;
  l.mutual_tls = info.mtls;
  l.response_flags = flags.empty() ? "-" : flags;
  return l;
}

// Views into `p` (see accesslog::Entry).
accesslog::Peer logPeer(const TelemetryPeer& p) {
  return {.workload = p.workload, .ns = p.ns, .principal = p.principal, .address = p.address};
}

// Views into `info` (see accesslog::Entry).
accesslog::Entry logEntry(const ConnectionInfo& info, accesslog::Kind kind) {
  accesslog::Entry e;
  e.timestamp = absl::Now();
  e.kind = kind;
  e.reporter = info.reporter == TelemetryReporter::kSource ? accesslog::Reporter::kSource
                                                           : accesslog::Reporter::kDestination;
  e.source = logPeer(info.source);
  e.destination = logPeer(info.destination);
  e.destination_service = info.destination_service;
  if (info.policy.action != PolicyOutcome::Action::kNone || !info.policy.allowed) {
    e.policy_decision =
        info.policy.allowed ? accesslog::PolicyDecision::kAllow : accesslog::PolicyDecision::kDeny;
  }
  e.policy_name = info.policy.policy;
  e.policy_rule = info.policy.rule;
  return e;
}

}  // namespace

// Counts policy decisions by (policy, action, decision); read at scrape time.
class Telemetry::Decisions {
 public:
  void add(const PolicyOutcome& p) {
    // Looked up by views: a series already counted (every one but the first) copies nothing.
    KeyView key{p.policy.empty() ? std::string_view("none") : std::string_view(p.policy),
                actionName(p.action), p.allowed ? "allow" : "deny"};
    absl::MutexLock lock(&mu_);
    auto it = counts_.find(key);
    if (it == counts_.end() && counts_.size() >= kMaxDecisionSeries) {
      key = {"overflow", "overflow", std::get<2>(key)};
      it = counts_.find(key);
    }
    if (it == counts_.end()) {
      counts_.emplace(Key(key), 1);
    } else {
      ++it->second;
    }
  }

  std::vector<metrics::Sample> samples() const {
    std::vector<metrics::Sample> out;
    absl::MutexLock lock(&mu_);
    for (const auto& [key, n] : counts_) {
      out.push_back({.name = "ferry_policy_decisions_total",
                     .help = "Authorization decisions by deciding policy, its action and outcome",
                     .counter = true,
                     .labels = {{"policy", std::get<0>(key)},
                                {"action", std::get<1>(key)},
                                {"decision", std::get<2>(key)}},
                     .value = static_cast<double>(n)});
    }
    return out;
  }

 private:
  using Key = std::tuple<std::string, std::string, std::string>;
  using KeyView = std::tuple<std::string_view, std::string_view, std::string_view>;
  mutable absl::Mutex mu_;
  std::map<Key, uint64_t, std::less<>> counts_ ABSL_GUARDED_BY(mu_);
};

// The ConnectionInfos of open connections, each kept once (addresses emptied: each connection
// keeps its own) and shared by every connection with the same peers, service and decision
// (agent/state/interned.h).
class Telemetry::SharedInfos {
 public:
  std::shared_ptr<const ConnectionInfo> intern(ConnectionInfo info) {
    absl::MutexLock lock(&mu_);
    return infos_.get(std::move(info));
  }
  SharedInfoCounts counts() const {
    absl::MutexLock lock(&mu_);
    return {.in_use = infos_.inUse(), .kept = infos_.kept()};
  }

 private:
  // Equality is ConnectionInfo's own (every field); the hash reads the fields that tell
  // connections apart in practice.
  struct Hash {
    size_t operator()(const ConnectionInfo& i) const {
      return absl::HashOf(i.reporter, i.source.workload, i.source.ns, i.source.principal,
                          i.destination.workload, i.destination.ns, i.destination_service,
                          i.policy.policy, i.policy.rule, i.policy.allowed);
    }
  };

  mutable absl::Mutex mu_;
  Interned<ConnectionInfo, Hash> infos_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<Telemetry>> Telemetry::create(
    const TelemetryConfig& config, std::shared_ptr<accesslog::Sink> sink) {
  std::unique_ptr<Telemetry> t(new Telemetry());
  auto log = accesslog::Logger::create(config.access_log, std::move(sink));
  if (!log.ok()) {
    return log.status();
  }
  t->access_log_ = *std::move(log);
  t->decisions_ = std::make_unique<Decisions>();
  t->shared_infos_ = std::make_unique<SharedInfos>();
  t->cluster_name_ = config.cluster_name;
  if (!config.metrics_address.empty()) {
    t->exporter_ = metrics::Exporter::create(config.limits);
    // Served by an AdminServer rather than the exporter's own (civetweb) listener: that one
    // spins on accept when the process is out of descriptors and stops answering.
    size_t colon = config.metrics_address.rfind(':');
    uint32_t port = 0;
    if (colon == std::string::npos ||
        !absl::SimpleAtoi(config.metrics_address.substr(colon + 1), &port) || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics address \"", config.metrics_address, "\" is not IPv4:PORT"));
    }
    metrics::Exporter* exporter = t->exporter_.get();
    std::map<std::string, AdminServer::Route> routes;
    routes["/metrics"] = AdminServer::getOnly([exporter] {
      return AdminServer::Response{200, metrics::Exporter::kContentType, exporter->scrape()};
    });
    auto server =
        AdminServer::start(config.metrics_address.substr(0, colon), static_cast<uint16_t>(port),
                           std::move(routes), config.metrics_fd);
    if (!server.ok()) {
      return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", config.metrics_address,
                                                 ": ", server.status().message()));
    }
    t->metrics_server_ = *std::move(server);
    Decisions* decisions = t->decisions_.get();
    t->exporter_->addSource([decisions] { return decisions->samples(); });
    accesslog::Logger* logger = t->access_log_.get();
    t->exporter_->addSource([logger] {
      return std::vector<metrics::Sample>{
          {.name = "ferry_access_log_lines_total",
           .help = "Access-log lines written or sampled out",
           .labels = {{"outcome", "written"}},
           .value = static_cast<double>(logger->written())},
          {.name = "ferry_access_log_lines_total",
           .help = "Access-log lines written or sampled out",
           .labels = {{"outcome", "sampled_out"}},
           .value = static_cast<double>(logger->sampledOut())},
      };
    });
  }
  if (!config.tracing.endpoint.empty()) {
    trace::ExporterConfig tracing = config.tracing;
    tracing.on_error = [](const absl::Status& s) {
      FERRY_LOG_EVERY_SECOND(kWarn, "trace export failed, spans dropped: ", s.message());
    };
    auto spans = trace::SpanExporter::create(tracing);
    if (!spans.ok()) {
      return spans.status();
    }
    t->spans_ = *std::move(spans);
    t->sampler_ = trace::Sampler(config.trace_sampling);
    trace::SpanExporter* exporter = t->spans_.get();
    t->addSource([exporter] { return spanExportSamples(*exporter); });
  }
  return t;
}

Telemetry::~Telemetry() = default;

void Telemetry::addSource(metrics::SampleSource source) {
  if (exporter_) {
    exporter_->addSource(std::move(source));
  }
}

int Telemetry::metricsPort() const {
  return metrics_server_ ? metrics_server_->port() : 0;
}

int Telemetry::metricsFd() const {
  return metrics_server_ ? metrics_server_->fd() : -1;
}

Telemetry::SharedInfoCounts Telemetry::sharedConnectionInfos() const {
  return shared_infos_->counts();
}

void Telemetry::stopMetricsServer() {
  metrics_server_.reset();
}

void Telemetry::recordDecision(const ConnectionInfo& info) {
  // Policy is decided at the destination; a source-side report of the same connection (same
  // node) must not count it twice.
  if (info.reporter == TelemetryReporter::kDestination) {
    decisions_->add(info.policy);
  }
}

ConnectionTelemetry Telemetry::openConnection(ConnectionInfo info) {
  recordDecision(info);
  ConnectionTelemetry conn;
  conn.telemetry_ = this;
  conn.started_ = std::chrono::steady_clock::now();
  conn.start_time_ = absl::Now();
  if (exporter_) {
    conn.counters_ =
        exporter_->istio().openConnection(connectionLabels(info, "tcp", "", cluster_name_));
  }
  conn.source_address_ = std::move(info.source.address);
  conn.destination_address_ = std::move(info.destination.address);
  info.source.address.clear();  // a moved-from string is valid but unspecified
  info.destination.address.clear();
  conn.info_ = shared_infos_->intern(std::move(info));
  return conn;
}

void Telemetry::connectionDenied(const ConnectionInfo& info) {
  recordDecision(info);
  accesslog::Entry e = logEntry(info, accesslog::Kind::kConnection);
  e.response_flags = "DENY";
  access_log_->log(e);
}

void Telemetry::recordRequest(const HttpRequestInfo& r) {
  if (r.policy_evaluated) {
    recordDecision(r.connection);
  }
  const std::string_view flags =
      r.connection.policy.allowed ? std::string_view(r.response_flags) : "DENY";
  if (exporter_) {
    metrics::RequestOutcome outcome{.response_code = r.response_code,
                                    .grpc_status = r.grpc_status,
                                    .duration_ms = absl::ToDoubleMilliseconds(r.duration),
                                    .request_bytes = r.request_bytes,
                                    .response_bytes = r.response_bytes};
    exporter_->istio().recordRequest(
        connectionLabels(r.connection, r.protocol, flags, cluster_name_), outcome);
  }
  if (spans_ && r.trace_sampled && !r.trace_id.empty()) {
    spans_->enqueue(requestSpan(r, cluster_name_));  // counted when dropped
  }
  accesslog::Entry e = logEntry(r.connection, accesslog::Kind::kRequest);
  e.timestamp = absl::Now() - r.duration;
  e.bytes_received = r.request_bytes;
  e.bytes_sent = r.response_bytes;
  e.duration = r.duration;
  e.response_code = r.response_code;
  e.trace_id = r.trace_id;
  e.span_id = r.span_id;
  e.parent_span_id = r.parent_span_id;
  e.method = r.method;
  e.path = r.path;
  e.authority = r.authority;
  e.response_flags = flags;
  access_log_->log(e);
}

void Telemetry::logConnection(const ConnectionTelemetry& conn, const ConnectionEnd& end) {
  accesslog::Entry e = logEntry(*conn.info_, accesslog::Kind::kConnection);
  e.source.address = conn.source_address_;
  e.destination.address = conn.destination_address_;
  e.timestamp = conn.start_time_;
  e.bytes_received = end.bytes_from_source;
  e.bytes_sent = end.bytes_to_source;
  e.duration = absl::FromChrono(std::chrono::steady_clock::now() - conn.started_);
  if (end.connect_failed) {
    e.response_flags = "UF";
  } else if (end.reset) {
    e.response_flags = "RST";
  }
  access_log_->log(e);
}

ConnectionTelemetry& ConnectionTelemetry::operator=(ConnectionTelemetry&& other) noexcept {
  if (this != &other) {
    close({.reset = true});
    telemetry_ = std::exchange(other.telemetry_, nullptr);
    info_ = std::move(other.info_);
    source_address_ = std::move(other.source_address_);
    destination_address_ = std::move(other.destination_address_);
    counters_ = other.counters_;
    started_ = other.started_;
    start_time_ = other.start_time_;
  }
  return *this;
}

void ConnectionTelemetry::close(const ConnectionEnd& end) {
  if (telemetry_ == nullptr) {
    return;
  }
  if (counters_.closed != nullptr) {
    // Istio's names are from the destination's view of the response: "sent" flows back to
    // the source, "received" came from it.
    counters_.addSent(end.bytes_to_source);
    counters_.addReceived(end.bytes_from_source);
    counters_.close();
  }
  telemetry_->logConnection(*this, end);
  telemetry_ = nullptr;
}

ConnectionTelemetry::~ConnectionTelemetry() {
  // A connection dropped without close() (teardown) still balances opened with closed.
  close({.reset = true});
}

}  // namespace ferry::agent
