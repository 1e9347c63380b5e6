// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/telemetry/telemetry_spans.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ferry::agent {
namespace {

template <size_t N>
std::array<uint8_t, N> idBytes(const std::string& hex) {
  std::array<uint8_t, N> out{};
  if (hex.size() == 2 * N) {  // formatted by trace::TraceContext: lowercase hex
    const std::string bytes = absl::HexStringToBytes(hex);
    std::copy(bytes.begin(), bytes.end(), out.begin());
  }
  return out;
}

uint64_t unixNanos(absl::Time t) {
  return static_cast<uint64_t>(absl::ToUnixNanos(t));
}

// Istio's span name: "<host>:<port>/*" (the Service's name when there is one).
std::string spanName(const HttpRequestInfo& r) {
  std::string host = r.authority;
  std::string port = "80";
  if (size_t colon = host.rfind(':'); colon != std::string::npos && host.back() != ']') {
    port = host.substr(colon + 1);
    host.resize(colon);
  }
  if (!r.connection.destination_service.empty()) {
    host = r.connection.destination_service;
  }
  return absl::StrCat(host, ":", port, "/*");
}

void addPeer(trace::Attributes& a, const char* side, const TelemetryPeer& p) {
  auto add = [&](const char* field, const std::string& value) {
    if (!value.empty()) {
      a.emplace_back(absl::StrCat(side, ".", field), value);
    }
  };
  add("workload", p.workload);
  add("namespace", p.ns);
  add("principal", p.principal);
  add("address", p.address);
}

}  // namespace

trace::Span requestSpan(const HttpRequestInfo& r, const std::string& cluster_name) {
  const bool server = r.connection.reporter == TelemetryReporter::kDestination;
  const TelemetryPeer& self = server ? r.connection.destination : r.connection.source;
  trace::Span s;
  s.trace_id = idBytes<16>(r.trace_id);
  s.span_id = idBytes<8>(r.span_id);
  if (!r.parent_span_id.empty()) {
    s.parent_span_id = idBytes<8>(r.parent_span_id);
  }
  s.flags = r.trace_sampled ? trace::kSampledFlag : 0;
  s.kind = server ? trace::SpanKind::kServer : trace::SpanKind::kClient;
  s.name = spanName(r);
  const absl::Time end = absl::Now();
  s.start_unix_nanos = unixNanos(end - r.duration);
  s.end_unix_nanos = unixNanos(end);
  s.error = r.response_code == 0 || r.response_code >= 500;

  const std::string flags = r.connection.policy.allowed ? r.response_flags : "DENY";
  trace::Attributes& a = s.attributes;
  a.emplace_back("component", std::string("proxy"));
  a.emplace_back("istio.canonical_service", self.canonical_service);
  a.emplace_back("istio.canonical_revision", self.canonical_revision);
  a.emplace_back("istio.namespace", self.ns);
  a.emplace_back("istio.cluster_id", cluster_name);
  a.emplace_back("http.method", r.method);
  a.emplace_back("http.url", absl::StrCat("http://", r.authority, r.path));
  a.emplace_back("http.path", r.path.substr(0, r.path.find('?')));
  a.emplace_back("http.protocol", r.protocol);  // Istio's request_protocol: "http" or "grpc"
  a.emplace_back("http.status_code", int64_t{r.response_code});
  if (r.grpc_status >= 0) {
    a.emplace_back("grpc.status_code", int64_t{r.grpc_status});
  }
  a.emplace_back("request_size", static_cast<int64_t>(r.request_bytes));
  a.emplace_back("response_size", static_cast<int64_t>(r.response_bytes));
  a.emplace_back("response_flags", flags.empty() ? std::string("-") : flags);
  a.emplace_back("upstream_cluster",
                 r.upstream_cluster.empty() ? std::string("-") : r.upstream_cluster);
  addPeer(a, "source", r.connection.source);
  addPeer(a, "destination", r.connection.destination);
  if (!r.connection.destination_service.empty()) {
    a.emplace_back("destination.service", r.connection.destination_service);
  }
  a.emplace_back("connection.mtls", r.connection.mtls);
  if (s.error) {
    a.emplace_back("error", true);
  }

  // Istio's service.name: "<canonical service>.<namespace>".
  s.resource = {{"service.name", self.canonical_service.empty()
                                     ? std::string("unknown")
                                     : absl::StrCat(self.canonical_service, ".", self.ns)},
                {"k8s.namespace.name", self.ns},
                {"k8s.cluster.name", cluster_name}};
  return s;
}

std::vector<metrics::Sample> spanExportSamples(const trace::SpanExporter& exporter) {
  const trace::SpanExporter::Counts c = exporter.counts();
  const char* help = "Spans sent to the trace collector, failed to send, or dropped (queue full)";
  std::vector<metrics::Sample> out;
  for (auto [outcome, n] : {std::pair{"exported", c.exported}, std::pair{"failed", c.failed},
                            std::pair{"dropped", c.dropped}}) {
    out.push_back({.name = "ferry_trace_spans_total",
                   .help = help,
                   .labels = {{"outcome", outcome}},
                   .value = static_cast<double>(n)});
  }
  out.push_back({.name = "ferry_trace_queue_spans",
                 .help = "Spans waiting to be sent to the trace collector",
                 .counter = false,
                 .value = static_cast<double>(c.queued)});
  return out;
}

}  // namespace ferry::agent
