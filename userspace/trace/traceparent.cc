// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "trace/traceparent.h"

#include <algorithm>
#include <optional>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"

namespace ferry::trace {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// Lowercase only: the spec forbids uppercase hex, so "4BF9..." is an invalid header.
std::optional<uint8_t> hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return static_cast<uint8_t>(c - '0');
  }
  if (c >= 'a' && c <= 'f') {
    return static_cast<uint8_t>(c - 'a' + 10);
  }
  return std::nullopt;
}

template <size_t N>
bool decodeHex(std::string_view text, std::array<uint8_t, N>& out) {
  if (text.size() != 2 * N) {
    return false;
  }
  for (size_t i = 0; i < N; ++i) {
    auto hi = hexValue(text[2 * i]);
    auto lo = hexValue(text[2 * i + 1]);
    if (!hi || !lo) {
      return false;
    }
    out[i] = static_cast<uint8_t>(*hi << 4 | *lo);
  }
  return true;
}

// Writes 2 * N lowercase hex digits at `out`.
template <size_t N>
void encodeHex(const std::array<uint8_t, N>& bytes, char* out) {
  for (size_t i = 0; i < N; ++i) {
    out[2 * i] = kHexDigits[bytes[i] >> 4];
    out[2 * i + 1] = kHexDigits[bytes[i] & 0xf];
  }
}

// Replaces `out` with the hex of `bytes`, in the capacity it has.
template <size_t N>
void assignHex(const std::array<uint8_t, N>& bytes, std::string& out) {
  out.resize(2 * N);
  encodeHex(bytes, out.data());
}

template <size_t N>
bool allZero(const std::array<uint8_t, N>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

template <size_t N>
void fillNonZero(std::array<uint8_t, N>& bytes, absl::BitGenRef gen) {
  do {
    for (auto& b : bytes) {
      b = absl::Uniform<uint8_t>(absl::IntervalClosedClosed, gen, 0, 255);
    }
  } while (allZero(bytes));
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

absl::BitGenRef defaultGen() {
  thread_local absl::BitGen gen;
  return gen;
}

}  // namespace

std::string TraceContext::traceIdHex() const {
  std::string out;
  assignTraceIdHex(out);
  return out;
}
std::string TraceContext::spanIdHex() const {
  std::string out;
  assignSpanIdHex(out);
  return out;
}
void TraceContext::assignTraceIdHex(std::string& out) const {
  assignHex(trace_id, out);
}
void TraceContext::assignSpanIdHex(std::string& out) const {
  assignHex(span_id, out);
}

std::string TraceContext::format() const {
  // "00-" trace-id "-" parent-id "-" flags, written in place: one allocation per header.
  std::string out(kTraceparentLength, '-');
  out[0] = '0';
  out[1] = '0';
  encodeHex(trace_id, &out[3]);
  encodeHex(span_id, &out[3 + 2 * trace_id.size() + 1]);
  encodeHex(std::array<uint8_t, 1>{flags}, &out[kTraceparentLength - 2]);
  return out;
}

TraceContext TraceContext::child(absl::BitGenRef gen) const {
  TraceContext next = *this;
  do {
    fillNonZero(next.span_id, gen);
  } while (next.span_id == span_id);
  return next;
}

TraceContext TraceContext::child() const {
  return child(defaultGen());
}

TraceContext TraceContext::generate(bool sampled, absl::BitGenRef gen) {
  TraceContext ctx;
  fillNonZero(ctx.trace_id, gen);
  fillNonZero(ctx.span_id, gen);
  ctx.flags = sampled ? kSampledFlag : 0;
  return ctx;
}

TraceContext TraceContext::generate(bool sampled) {
  return generate(sampled, defaultGen());
}

absl::StatusOr<TraceContext> parseTraceparent(std::string_view header) {
  std::string_view s = trimOws(header);
  if (s.size() < kTraceparentLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("traceparent: ", s.size(), " characters, need at least ", kTraceparentLength));
  }
  std::array<uint8_t, 1> version{};
  if (!decodeHex(s.substr(0, 2), version)) {
    return absl::InvalidArgumentError("traceparent: version is not two lowercase hex digits");
  }
  if (version[0] == 0xff) {
    return absl::InvalidArgumentError("traceparent: version ff is invalid");
  }
  if (version[0] == 0x00 && s.size() != kTraceparentLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "traceparent: version 00 is exactly ", kTraceparentLength, " characters, got ", s.size()));
  }
  if (s.size() > kTraceparentLength && s[kTraceparentLength] != '-') {
    return absl::InvalidArgumentError(
        "traceparent: fields after trace-flags must be separated by '-'");
  }
  if (s[2] != '-' || s[35] != '-' || s[52] != '-') {
    return absl::InvalidArgumentError("traceparent: fields must be separated by '-'");
  }
  TraceContext ctx;
  if (!decodeHex(s.substr(3, 32), ctx.trace_id)) {
    return absl::InvalidArgumentError("traceparent: trace-id is not 32 lowercase hex digits");
  }
  if (allZero(ctx.trace_id)) {
    return absl::InvalidArgumentError("traceparent: trace-id is all zeros");
  }
  if (!decodeHex(s.substr(36, 16), ctx.span_id)) {
    return absl::InvalidArgumentError("traceparent: parent-id is not 16 lowercase hex digits");
  }
  if (allZero(ctx.span_id)) {
    return absl::InvalidArgumentError("traceparent: parent-id is all zeros");
  }
  std::array<uint8_t, 1> flags{};
  if (!decodeHex(s.substr(53, 2), flags)) {
    return absl::InvalidArgumentError("traceparent: trace-flags is not two lowercase hex digits");
  }
  ctx.flags = version[0] == 0x00 ? flags[0] : (flags[0] & kSampledFlag);
  return ctx;
}

}  // namespace ferry::trace
