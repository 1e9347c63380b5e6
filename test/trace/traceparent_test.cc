// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "trace/traceparent.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <random>
#include <set>
#include <string>

#include "status_testing.h"

namespace ferry::trace {
namespace {

constexpr std::string_view kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kSpan = "00f067aa0ba902b7";

std::string header(std::string_view version, std::string_view trace, std::string_view span,
                   std::string_view flags) {
  return std::string(version) + "-" + std::string(trace) + "-" + std::string(span) + "-" +
         std::string(flags);
}

TEST_CASE("traceparent: valid headers parse to the spec's fields", "[trace]") {
  struct Row {
    std::string description, input;
    std::string trace_id, span_id;
    uint8_t flags;
  };
  const std::string t(kTrace), s(kSpan);
  const std::vector<Row> rows = {
      {"spec example, sampled", header("00", t, s, "01"), t, s, 0x01},
      {"spec example, not sampled", header("00", t, s, "00"), t, s, 0x00},
      {"version 00 keeps unknown flag bits", header("00", t, s, "09"), t, s, 0x09},
      {"leading and trailing OWS", " \t" + header("00", t, s, "01") + "\t ", t, s, 0x01},
      {"future version, exactly 55 characters", header("01", t, s, "01"), t, s, 0x01},
      {"future version with more fields (spec example)",
       header("cc", t, s, "01") + "-what-the-future-will-be-like", t, s, 0x01},
      {"future version keeps only the sampled bit", header("fe", t, s, "0b"), t, s, 0x01},
      {"future version, flags without sampled bit", header("02", t, s, "fe") + "-x", t, s, 0x00},
      {"ids of all f", header("00", std::string(32, 'f'), std::string(16, 'f'), "ff"),
       std::string(32, 'f'), std::string(16, 'f'), 0xff},
  };
  for (const auto& row : rows) {
    INFO(row.description << ": " << row.input);
    auto ctx = parseTraceparent(row.input);
    REQUIRE_OK(ctx);
    CHECK(ctx->traceIdHex() == row.trace_id);
    CHECK(ctx->spanIdHex() == row.span_id);
    CHECK(ctx->flags == row.flags);
    CHECK(ctx->sampled() == ((row.flags & kSampledFlag) != 0));
    // Written over a string that held something longer: exactly the ids, nothing left over.
    std::string reused = "text longer than any id, left from an earlier request's report";
    ctx->assignTraceIdHex(reused);
    CHECK(reused == row.trace_id);
    ctx->assignSpanIdHex(reused);
    CHECK(reused == row.span_id);
    char flags[3];
    std::snprintf(flags, sizeof(flags), "%02x", row.flags);
    CHECK(ctx->format() == header("00", row.trace_id, row.span_id, flags));
  }
}

TEST_CASE("traceparent: invalid headers are refused with a reason", "[trace]") {
  struct Row {
    std::string description, input, error_contains;
  };
  const std::string t(kTrace), s(kSpan);
  const std::vector<Row> rows = {
      {"empty", "", "characters"},
      {"version ff", header("ff", t, s, "01"), "version ff"},
      {"all-zero trace id", header("00", std::string(32, '0'), s, "01"), "trace-id is all zeros"},
      {"all-zero parent id", header("00", t, std::string(16, '0'), "01"), "parent-id is all zeros"},
      {"uppercase trace id", header("00", "4BF92F3577B34DA6A3CE929D0E0E4736", s, "01"), "trace-id"},
      {"uppercase parent id", header("00", t, "00F067AA0BA902B7", "01"), "parent-id"},
      {"uppercase version", header("0A", t, s, "01"), "version"},
      {"uppercase flags", header("00", t, s, "0A"), "trace-flags"},
      {"non-hex in trace id", header("00", "4bf92f3577b34da6a3ce929d0e0e473g", s, "01"),
       "trace-id"},
      {"non-hex in parent id", header("00", t, "00f067aa0ba902bz", "01"), "parent-id"},
      {"non-hex flags", header("00", t, s, "0x"), "trace-flags"},
      {"non-hex version", header("0z", t, s, "01"), "version"},
      {"short trace id", header("00", t.substr(1), s, "01"), "characters"},
      {"short parent id", header("00", t, s.substr(1), "01") + "0", "separated"},
      {"long trace id", header("00", t + "0", s, "01"), "version 00 is exactly"},
      {"one-digit flags", header("00", t, s, "1") + " ", "characters"},
      {"version 00 with a trailing field", header("00", t, s, "01") + "-extra",
       "version 00 is exactly"},
      {"version 00 with trailing garbage", header("00", t, s, "01") + "x", "version 00 is exactly"},
      {"future version, no dash after flags", header("cc", t, s, "01") + ".what", "after"},
      {"future version, too short", header("cc", t, s, "0"), "characters"},
      {"wrong separator", "00_" + t + "-" + s + "-01", "separated"},
      {"spaces inside", header("00", t, s, "01").replace(2, 1, " "), "separated"},
  };
  for (const auto& row : rows) {
    INFO(row.description << ": '" << row.input << "'");
    auto ctx = parseTraceparent(row.input);
    REQUIRE_FALSE(ctx.ok());
    CHECK(ctx.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(ctx.status().message()), Catch::Contains(row.error_contains));
  }
}

TEST_CASE("traceparent: format round-trips and always writes version 00", "[trace]") {
  const std::string v00 = header("00", std::string(kTrace), std::string(kSpan), "01");
  auto ctx = parseTraceparent(v00);
  REQUIRE_OK(ctx);
  CHECK(ctx->format() == v00);

  auto future =
      parseTraceparent(header("cc", std::string(kTrace), std::string(kSpan), "03") + "-more");
  REQUIRE_OK(future);
  CHECK(future->format() == v00);
}

TEST_CASE("traceparent: generate makes valid, non-zero, distinct ids", "[trace]") {
  std::mt19937_64 rng(42);
  std::set<std::string> trace_ids;
  for (int i = 0; i < 100; ++i) {
    auto ctx = TraceContext::generate(i % 2 == 0, rng);
    CHECK(ctx.sampled() == (i % 2 == 0));
    auto parsed = parseTraceparent(ctx.format());
    REQUIRE_OK(parsed);
    CHECK(*parsed == ctx);
    trace_ids.insert(ctx.traceIdHex());
  }
  CHECK(trace_ids.size() == 100);

  // Seeded generators give the same ids: tests elsewhere can predict them.
  std::mt19937_64 a(7), b(7);
  CHECK(TraceContext::generate(true, a) == TraceContext::generate(true, b));
}

TEST_CASE("traceparent: child keeps trace id and flags and changes the span id", "[trace]") {
  auto parent = parseTraceparent(header("00", std::string(kTrace), std::string(kSpan), "09"));
  REQUIRE_OK(parent);
  std::mt19937_64 rng(1);
  std::set<std::string> spans;
  for (int i = 0; i < 50; ++i) {
    TraceContext child = i % 2 == 0 ? parent->child(rng) : parent->child();
    CHECK(child.traceIdHex() == kTrace);
    CHECK(child.flags == 0x09);
    CHECK(child.spanIdHex() != kSpan);
    CHECK(parseTraceparent(child.format()).ok());
    spans.insert(child.spanIdHex());
  }
  CHECK(spans.size() == 50);
}

}  // namespace
}  // namespace ferry::trace
