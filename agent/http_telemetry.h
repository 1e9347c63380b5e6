// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Per-request telemetry and tracing for the inbound HTTP path (http_inbound.h): the header hook
// that forwards a child span in `traceparent`, and the report each finished request of the HTTP
// filters becomes (istio_requests_total and friends, a policy decision, an access-log line).
//
// The filters carry everything a request needs in its RequestRecord (the traceparent received
// and the one the hook forwarded), so nothing per request is kept here.

#include <string_view>

#include "agent/l7_authorizer.h"
#include "agent/local_pods.h"
#include "agent/telemetry.h"
#include "agent/worker_context.h"
#include "agent/workload_state.h"
#include "http/http1_filter.h"
#include "http/request_view.h"
#include "trace/traceparent.h"

namespace ferry::agent {

// The context to forward for a request that carried `incoming` (a traceparent value, "" when
// absent): a child of a valid incoming context, otherwise the root of a new, unsampled trace
// (Ferry records no spans of its own, so it does not ask others to).
trace::TraceContext forwardedTrace(std::string_view incoming);

// Replaces the request's traceparent with forwardedTrace(...), and drops tracestate when the
// incoming traceparent was unusable (the spec forbids using it then).
http::RequestHeaderHook traceHeaderHook();

// The destination-side report of one finished request on an inbound connection to `pod`.
HttpRequestInfo httpRequestInfo(const WorkloadState& state, const LocalPod& pod,
                                const InboundPeer& peer, const http::RequestRecord& record);

// httpRequestInfo against the current state, handed to ctx.shared.telemetry.
void reportHttpRequest(WorkerContext& ctx, const LocalPod& pod, const InboundPeer& peer,
                       const http::RequestRecord& record);

}  // namespace ferry::agent
