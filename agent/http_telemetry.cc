// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http_telemetry.h"

#include "absl/strings/numbers.h"
#include "agent/telemetry_peers.h"

namespace ferry::agent {
namespace {

constexpr std::string_view kSpiffePrefix = "spiffe://";

PolicyOutcome l7Outcome(const http::RequestRecord& r) {
  PolicyOutcome o;
  if (!r.authorized) {
    return o;  // refused before policy ran
  }
  o.allowed = r.allowed;
  o.policy = r.policy;
  o.reason = r.reason;
  if (!r.policy.empty()) {
    o.action = r.allowed ? PolicyOutcome::Action::kAllow : PolicyOutcome::Action::kDeny;
    int rule = -1;
    o.rule = absl::SimpleAtoi(r.rule, &rule) ? rule : -1;
  }
  return o;
}

// Envoy's flag names for what went wrong besides policy.
std::string responseFlags(const http::RequestRecord& r) {
  if (!r.authorized && r.local_reply) {
    return "DPE";  // downstream protocol error: the request was malformed
  }
  if (r.local_reply && r.status == 502) {
    return "UC";  // the app's connection ended before it answered
  }
  return "";
}

}  // namespace

trace::TraceContext forwardedTrace(std::string_view incoming) {
  if (!incoming.empty()) {
    auto parent = trace::parseTraceparent(incoming);
    if (parent.ok()) {
      return parent->child();
    }
  }
  return trace::TraceContext::generate(/*sampled=*/false);
}

http::RequestHeaderHook traceHeaderHook() {
  return [](const http::RequestView& view, http::HeaderEdits& edits) {
    std::string incoming = view.headerJoined("traceparent").value_or("");
    if (!incoming.empty() && !trace::parseTraceparent(incoming).ok()) {
      edits.remove("tracestate");
    }
    edits.set("traceparent", forwardedTrace(incoming).format());
  };
}

HttpRequestInfo httpRequestInfo(const WorkloadState& state, const LocalPod& pod,
                                const InboundPeer& peer, const http::RequestRecord& record) {
  HttpRequestInfo r;
  std::string principal = peer.principal;
  if (principal.starts_with(kSpiffePrefix)) {
    principal.erase(0, kSpiffePrefix.size());  // inboundReport wants the agent's form
  }
  SocketAddress destination;
  if (auto parsed = SocketAddress::parse(peer.destination_ip, peer.destination_port); parsed.ok()) {
    destination = *parsed;
  }
  r.connection = inboundReport(state, pod, principal, /*mtls=*/!principal.empty(), peer.source_ip,
                               peer.source_ip, destination, Decision{});
  r.connection.policy = l7Outcome(record);
  r.policy_evaluated = record.authorized;
  r.response_flags = responseFlags(record);
  r.method = record.method;
  r.path = record.path;
  r.authority = record.authority;
  r.protocol = record.grpc ? "grpc" : "http";
  r.response_code = record.status;
  r.grpc_status = record.grpc_status;
  r.request_bytes = record.request_body_bytes;
  r.response_bytes = record.response_body_bytes;
  r.duration = absl::FromChrono(record.duration);

  auto incoming = trace::parseTraceparent(record.traceparent);
  auto forwarded = trace::parseTraceparent(record.forwarded_traceparent);
  // Forwarded: our span is the one the app saw. Not forwarded (denied, malformed): the span
  // this agent answered in.
  trace::TraceContext ours = forwarded.ok() ? *forwarded : forwardedTrace(record.traceparent);
  r.trace_id = ours.traceIdHex();
  r.span_id = ours.spanIdHex();
  if (incoming.ok() && incoming->trace_id == ours.trace_id) {
    r.parent_span_id = incoming->spanIdHex();
  }
  return r;
}

void reportHttpRequest(WorkerContext& ctx, const LocalPod& pod, const InboundPeer& peer,
                       const http::RequestRecord& record) {
  auto state = ctx.shared.workloads->current();
  ctx.shared.telemetry->recordRequest(httpRequestInfo(*state, pod, peer, record));
}

}  // namespace ferry::agent
