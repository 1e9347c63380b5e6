// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A finished span as Ferry exports it (OTLP's Span, reduced to what a proxy reports), the
// resource that reported it, and the sampling decision that says whether it is exported.

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "trace/traceparent.h"

namespace ferry::trace {

enum class SpanKind { kServer, kClient };

using AttributeValue = std::variant<std::string, int64_t, bool>;
using Attributes = std::vector<std::pair<std::string, AttributeValue>>;

struct Span {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  std::array<uint8_t, 8> parent_span_id{};  // all zero: a root span
  uint8_t flags = 0;                        // W3C trace flags
  std::string name;
  SpanKind kind = SpanKind::kServer;
  uint64_t start_unix_nanos = 0;
  uint64_t end_unix_nanos = 0;
  bool error = false;  // OTLP status ERROR (5xx, a reset); otherwise UNSET
  Attributes attributes;
  // Who reported it (OTLP Resource attributes): spans with equal resources are grouped.
  Attributes resource;
};

// OpenTelemetry's ParentBased(TraceIdRatioBased(ratio)) sampler: a request with a valid parent
// context follows the parent's sampled flag; a new trace is sampled when its trace id falls in
// the ratio (the id's last 8 bytes as a big-endian number below ratio * 2^64, the same rule as
// the SDKs, so every agent decides the same for one trace id).
class Sampler {
 public:
  Sampler() = default;  // samples no new trace
  explicit Sampler(double ratio) : ratio_(ratio) {}
  double ratio() const { return ratio_; }
  bool sampleRoot(const std::array<uint8_t, 16>& trace_id) const;
  bool sample(const TraceContext* parent, const std::array<uint8_t, 16>& trace_id) const {
    return parent != nullptr ? parent->sampled() : sampleRoot(trace_id);
  }

 private:
  double ratio_ = 0;
};

}  // namespace ferry::trace
