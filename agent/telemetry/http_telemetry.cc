// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/telemetry/http_telemetry.h"

#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/telemetry/telemetry_peers.h"

namespace ferry::agent {
namespace {

constexpr std::string_view kSpiffePrefix = "spiffe://";

// Assigns every field of `o`: a reused report keeps its capacity.
void assignL7Outcome(const http::RequestRecord& r, PolicyOutcome& o) {
  o.allowed = true;
  o.action = PolicyOutcome::Action::kNone;
  o.policy.clear();
  o.rule = -1;
  if (!r.authorized) {
    return;  // refused before policy ran
  }
  // A request refused after policy with a flag of its own (a rate limit: "RL") was allowed by
  // policy: it is reported under that flag, not as a policy denial.
  o.allowed = r.allowed || !r.response_flags.empty();
  o.policy = r.policy;
  if (!r.policy.empty()) {
    o.action = o.allowed ? PolicyOutcome::Action::kAllow : PolicyOutcome::Action::kDeny;
    int rule = -1;
    o.rule = absl::SimpleAtoi(r.rule, &rule) ? rule : -1;
  }
}

// Envoy's flag names for what went wrong besides policy.
std::string responseFlags(const http::RequestRecord& r) {
  if (!r.response_flags.empty()) {
    return r.response_flags;  // set by the authorizer: "RL" for a rate limit
  }
  if (!r.authorized && r.local_reply) {
    return "DPE";  // downstream protocol error: the request was malformed
  }
  if (r.local_reply && r.status == 502) {
    return "UC";  // the app's connection ended before it answered
  }
  return "";
}

}  // namespace

trace::TraceContext forwardedTrace(std::string_view incoming, const trace::Sampler& sampler) {
  if (!incoming.empty()) {
    auto parent = trace::parseTraceparent(incoming);
    if (parent.ok()) {
      return parent->child();
    }
  }
  trace::TraceContext root = trace::TraceContext::generate(/*sampled=*/false);
  if (sampler.sampleRoot(root.trace_id)) {
    root.flags |= trace::kSampledFlag;
  }
  return root;
}

void setForwardedTrace(std::string_view incoming, const trace::TraceContext& ours,
                       http::HeaderEdits& edits) {
  if (!incoming.empty() && !trace::parseTraceparent(incoming).ok()) {
    edits.remove("tracestate");
  }
  edits.set("traceparent", ours.format());
}

void setTrace(HttpRequestInfo& r, const trace::TraceContext* incoming,
              const trace::TraceContext& ours) {
  ours.assignTraceIdHex(r.trace_id);
  ours.assignSpanIdHex(r.span_id);
  r.trace_sampled = ours.sampled();
  if (incoming != nullptr && incoming->trace_id == ours.trace_id) {
    incoming->assignSpanIdHex(r.parent_span_id);
  } else {
    r.parent_span_id.clear();
  }
}

http::RequestHeaderHook traceHeaderHook(trace::Sampler sampler) {
  return [sampler](const http::RequestView& view, http::HeaderEdits& edits) {
    std::string incoming = view.headerJoined("traceparent").value_or("");
    setForwardedTrace(incoming, forwardedTrace(incoming, sampler), edits);
  };
}

ConnectionInfo inboundHttpConnection(const WorkloadState& state, const LocalPod& pod,
                                     const InboundPeer& peer) {
  std::string principal = peer.principal;
  if (principal.starts_with(kSpiffePrefix)) {
    principal.erase(0, kSpiffePrefix.size());  // inboundReport wants the agent's form
  }
  SocketAddress destination;
  if (auto parsed = SocketAddress::parse(peer.destination_ip, peer.destination_port); parsed.ok()) {
    destination = *parsed;
  }
  ConnectionInfo info = inboundReport(state, pod,
                                      {.principal = principal,
                                       .mtls = !principal.empty(),
                                       .ip = peer.source_ip,
                                       .address = peer.source_ip},
                                      destination, Decision{});
  if (peer.baggage) {
    adoptBaggage(info, *peer.baggage);
  }
  return info;
}

HttpRequestInfo httpRequestInfo(const WorkloadState& state, const LocalPod& pod,
                                const InboundPeer& peer, const http::RequestRecord& record,
                                const trace::Sampler& sampler) {
  return httpRequestInfo(inboundHttpConnection(state, pod, peer), record, sampler);
}

HttpRequestInfo httpRequestInfo(const ConnectionInfo& connection, const http::RequestRecord& record,
                                const trace::Sampler& sampler) {
  HttpRequestInfo r;
  r.connection = connection;
  fillHttpRequestInfo(record, sampler, r);
  return r;
}

void fillHttpRequestInfo(const http::RequestRecord& record, const trace::Sampler& sampler,
                         HttpRequestInfo& r) {
  assignL7Outcome(record, r.connection.policy);
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

  // A request without the header (most) is not parsed: its failure would build an error Status
  // per request.
  auto parsed = [](std::string_view header) -> std::optional<trace::TraceContext> {
    if (header.empty()) {
      return std::nullopt;
    }
    auto context = trace::parseTraceparent(header);
    return context.ok() ? std::optional(*context) : std::nullopt;
  };
  std::optional<trace::TraceContext> incoming = parsed(record.traceparent);
  std::optional<trace::TraceContext> forwarded = parsed(record.forwarded_traceparent);
  // Forwarded: our span is the one the app saw. Not forwarded (denied, malformed): the span
  // this agent answered in.
  trace::TraceContext ours = forwarded ? *forwarded : forwardedTrace(record.traceparent, sampler);
  setTrace(r, incoming ? &*incoming : nullptr, ours);
  r.upstream_cluster.clear();
  if (std::string_view address = r.connection.destination.address; !address.empty()) {
    // Istio's inbound cluster name: "inbound|<port>||".
    r.upstream_cluster.append("inbound|")
        .append(address.substr(address.rfind(':') + 1))
        .append("||");
  }
}

void HttpInboundReporter::report(const http::RequestRecord& record) {
  std::shared_ptr<const WorkloadState> state = workloads_.current();
  if (state_.lock() != state) {
    connection_ = inboundHttpConnection(*state, *pod_, peer_);
    state_ = state;
  }
  // One report per worker thread, filled again for each request: its strings keep their
  // capacity, so once they have grown a request's report allocates nothing (a report built
  // afresh took a dozen allocations, a copy of the connection's peers among them).
  thread_local HttpRequestInfo request;
  request.connection = connection_;
  fillHttpRequestInfo(record, telemetry_.sampler(), request);
  telemetry_.recordRequest(request);
}

}  // namespace ferry::agent
