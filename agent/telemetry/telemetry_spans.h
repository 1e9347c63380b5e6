// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The span a finished HTTP request becomes (trace/span.h), exported to an OTLP collector when
// the request's trace is sampled: a SERVER span at the destination's agent, a CLIENT span at the
// source's, with the attributes Istio's proxies put on theirs (istio.*, http.*, response_flags,
// upstream_cluster, ...) and the peers of the request as Ferry's metrics name them.

#include <string>
#include <vector>

#include "agent/telemetry/telemetry.h"
#include "metrics/exporter.h"
#include "trace/span.h"
#include "trace/span_exporter.h"

namespace ferry::agent {

// `r` must carry a trace (trace_id and span_id). `cluster_name`: this agent's cluster.
trace::Span requestSpan(const HttpRequestInfo& r, const std::string& cluster_name);

// ferry_trace_spans_total{outcome=exported|failed|dropped} and ferry_trace_queue_spans.
std::vector<metrics::Sample> spanExportSamples(const trace::SpanExporter& exporter);

}  // namespace ferry::agent
