// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/), version 00:
//   traceparent = version "-" trace-id "-" parent-id "-" trace-flags
//   e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
// Ferry forwards what it receives and writes a child span id for the hop it reports, so the
// access log can be joined with the application's own traces.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/statusor.h"

namespace ferry::trace {

inline constexpr uint8_t kSampledFlag = 0x01;
// Length of a version-00 header, and the minimum length of any future version's.
inline constexpr size_t kTraceparentLength = 55;

struct TraceContext {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};  // the spec's parent-id: the caller's span
  uint8_t flags = 0;

  bool sampled() const { return (flags & kSampledFlag) != 0; }
  std::string traceIdHex() const;
  std::string spanIdHex() const;
  // The same written over `out`, which keeps its capacity: a report reused for many requests
  // does not allocate for them.
  void assignTraceIdHex(std::string& out) const;
  void assignSpanIdHex(std::string& out) const;
  // Always version 00: a vendor that knows only version 00 writes 00 when forwarding.
  std::string format() const;

  // The context for the next hop: same trace id and flags, a new random span id.
  TraceContext child(absl::BitGenRef gen) const;
  TraceContext child() const;

  // A new trace: random non-zero trace id and span id.
  static TraceContext generate(bool sampled, absl::BitGenRef gen);
  static TraceContext generate(bool sampled);

  bool operator==(const TraceContext&) const = default;
};

// Parses a traceparent header value. Leading and trailing spaces and tabs (HTTP OWS) are
// ignored. Errors say which part is wrong; a caller that gets one starts a new trace, as the
// spec says, rather than failing the request.
//
// Versions other than 00 and ff are parsed the way the spec asks of a version-00 vendor: the
// first four fields must have version 00's shape, and anything after them must start with '-'.
// Only the sampled flag is kept from such a header, since other bits may mean something else
// there.
absl::StatusOr<TraceContext> parseTraceparent(std::string_view header);

}  // namespace ferry::trace
