// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Per-request telemetry and tracing for the inbound HTTP path (http_inbound.h): the header hook
// that forwards a child span in `traceparent`, and the report each finished request of the HTTP
// filters becomes (istio_requests_total and friends, a policy decision, an access-log line).
//
// The filters carry everything a request needs in its RequestRecord (the traceparent received
// and the one the hook forwarded), so nothing per request is kept here.

#include <memory>
#include <string_view>

#include "agent/http/l7_authorizer.h"
#include "agent/pods/local_pods.h"
#include "agent/state/workload_state.h"
#include "agent/telemetry/telemetry.h"
#include "http/http1_filter.h"
#include "http/request_view.h"
#include "trace/span.h"
#include "trace/traceparent.h"

namespace ferry::agent {

// The context to forward for a request that carried `incoming` (a traceparent value, "" when
// absent): a child of a valid incoming context (sampled as its parent is), otherwise the root of
// a new trace, sampled as `sampler` decides for a root (trace/span.h; the default samples none:
// an agent that exports no spans does not ask others to record theirs).
trace::TraceContext forwardedTrace(std::string_view incoming, const trace::Sampler& sampler = {});

// Puts `ours` in the request's traceparent, and drops tracestate when `incoming` (the
// traceparent received) was unusable (the spec forbids using it then).
void setForwardedTrace(std::string_view incoming, const trace::TraceContext& ours,
                       http::HeaderEdits& edits);

// Sets the request's trace fields for our span `ours`; its parent is `incoming` (the context
// received, null when none was valid) when that is of the same trace.
void setTrace(HttpRequestInfo& r, const trace::TraceContext* incoming,
              const trace::TraceContext& ours);

// Replaces the request's traceparent with forwardedTrace(...) (setForwardedTrace).
http::RequestHeaderHook traceHeaderHook(trace::Sampler sampler = {});

// Who talked to whom on an inbound connection to `pod` (the part of every request's report that
// depends only on the connection and the state): peers, service, mTLS, no policy yet.
ConnectionInfo inboundHttpConnection(const WorkloadState& state, const LocalPod& pod,
                                     const InboundPeer& peer);

// The destination-side report of one finished request on an inbound connection to `pod`.
// `sampler` decides for a request that was answered here without a traceparent (denied,
// malformed): the span this agent answered in starts a trace then.
HttpRequestInfo httpRequestInfo(const WorkloadState& state, const LocalPod& pod,
                                const InboundPeer& peer, const http::RequestRecord& record,
                                const trace::Sampler& sampler = {});
// The same from inboundHttpConnection(...) computed before.
HttpRequestInfo httpRequestInfo(const ConnectionInfo& connection, const http::RequestRecord& record,
                                const trace::Sampler& sampler = {});
// The same into `r`, whose connection part (all of r.connection but its policy) the caller set:
// every other field is assigned, so a report reused for many requests keeps its strings'
// capacity and nothing of an earlier request.
void fillHttpRequestInfo(const http::RequestRecord& record, const trace::Sampler& sampler,
                         HttpRequestInfo& r);

// Reports an inbound connection's requests to `telemetry` against the state `workloads` holds.
// The connection part is computed once per state snapshot, not per request (it looks the peers
// up and scans the Services for the destination's): the same report as computing it each time,
// since a snapshot never changes. Held weakly: an idle connection does not keep an old snapshot.
class HttpInboundReporter {
 public:
  HttpInboundReporter(const WorkloadStateHolder& workloads, Telemetry& telemetry,
                      std::shared_ptr<const LocalPod> pod, InboundPeer peer)
      : workloads_(workloads),
        telemetry_(telemetry),
        pod_(std::move(pod)),
        peer_(std::move(peer)) {}
  void report(const http::RequestRecord& record);

 private:
  const WorkloadStateHolder& workloads_;
  Telemetry& telemetry_;
  std::shared_ptr<const LocalPod> pod_;
  InboundPeer peer_;
  std::weak_ptr<const WorkloadState> state_;  // the snapshot connection_ was computed from
  ConnectionInfo connection_;
};

}  // namespace ferry::agent
