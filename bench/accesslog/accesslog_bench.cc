// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// What one access log line costs to encode (accesslog::toJson), beside the JSON library's DOM
// writing the same line as the baseline of the same run. See README.md. Not a test: prints
// figures, asserts nothing.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/time/clock.h"
#include "accesslog/accesslog.h"
#include "nlohmann/json.hpp"

using ferry::accesslog::Entry;
using Clock = std::chrono::steady_clock;

namespace {

// A request as the destination agent logs it: peers, a path with a query, a trace.
Entry sampleEntry() {
  Entry e;
  e.kind = ferry::accesslog::Kind::kRequest;
  e.reporter = ferry::accesslog::Reporter::kDestination;
  e.source = {.workload = "productpage-v1",
              .ns = "default",
              .principal = "spiffe://cluster.local/ns/default/sa/productpage",
              .address = "10.244.1.17:43562"};
  e.destination = {.workload = "reviews-v2",
                   .ns = "default",
                   .principal = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
                   .address = "10.244.2.9:9080"};
  e.destination_service = "reviews.default.svc.cluster.local";
  e.bytes_sent = 2311;
  e.bytes_received = 412;
  e.duration = absl::Milliseconds(3);
  e.response_code = 200;
  e.policy_decision = ferry::accesslog::PolicyDecision::kAllow;
  e.policy_name = "default/reviews-viewer";
  e.policy_rule = 0;
  e.method = "GET";
  e.path = "/reviews/0?user=\"jason\"&lang=en";
  e.authority = "reviews:9080";
  e.trace_id = "0af7651916cd43dd8448eb211c80319c";
  e.span_id = "b7ad6b7169203331";
  return e;
}

// The DOM the hand-written encoder replaced: the same keys and values.
std::string viaDom(const Entry& e) {
  auto peer = [](const ferry::accesslog::Peer& p) {
    return nlohmann::json{{"address", p.address},
                          {"namespace", p.ns},
                          {"principal", p.principal},
                          {"workload", p.workload}};
  };
  nlohmann::json j{
      {"authority", e.authority},
      {"bytes_received", e.bytes_received},
      {"bytes_sent", e.bytes_sent},
      {"destination", peer(e.destination)},
      {"destination_service", e.destination_service},
      {"duration_ms", absl::ToInt64Milliseconds(e.duration)},
      {"kind", "request"},
      {"method", e.method},
      {"parent_span_id", nullptr},
      {"path", e.path},
      {"policy_decision", "allow"},
      {"policy_name", e.policy_name},
      {"policy_rule", std::to_string(e.policy_rule)},
      {"reporter", "destination"},
      {"response_code", *e.response_code},
      {"response_flags", nullptr},
      {"source", peer(e.source)},
      {"span_id", e.span_id},
      {"timestamp", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", e.timestamp, absl::UTCTimeZone())},
      {"trace_id", e.trace_id}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Lines per second for `seconds`, each with the current time (as the agent logs them).
template <typename F>
double rate(double seconds, F encode) {
  Entry e = sampleEntry();
  size_t lines = 0, bytes = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    for (int i = 0; i < 256; ++i) {
      e.timestamp = absl::Now();
      bytes += encode(e).size();
      ++lines;
    }
  }
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  if (bytes == 0) {
    std::abort();  // keeps the encoding from being optimized away
  }
  return static_cast<double>(lines) / took;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  const double own = rate(seconds, [](const Entry& e) { return ferry::accesslog::toJson(e); });
  const double dom = rate(seconds, viaDom);
  std::printf("toJson: %.0f lines/s (%.0f ns/line)\n", own, 1e9 / own);
  std::printf("nlohmann DOM (baseline): %.0f lines/s (%.0f ns/line)\n", dom, 1e9 / dom);
  std::printf("toJson / DOM: %.2fx\n", own / dom);
  return 0;
}
