// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// OTLP/HTTP encoding of spans (https://opentelemetry.io/docs/specs/otlp/#otlphttp): the body of
// a POST /v1/traces with Content-Type application/x-protobuf, an ExportTraceServiceRequest
// (otlp_trace.proto). Spans are grouped by resource, in the order their resources first appear.

#include <span>
#include <string>

#include "trace/span.h"

namespace ferry::trace {

inline constexpr char kOtlpContentType[] = "application/x-protobuf";
inline constexpr char kInstrumentationScope[] = "ferry-agent";

std::string encodeOtlp(std::span<const Span> spans);

}  // namespace ferry::trace
