// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The access log: one JSON line per connection and per HTTP request, written to a sink
// (stdout by default), sampled or turned off by config. Field names follow Istio's telemetry
// vocabulary so existing log pipelines can read them.

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ferry::accesslog {

enum class Kind { kConnection, kRequest };
enum class Reporter { kSource, kDestination };
enum class PolicyDecision { kNone, kAllow, kDeny };

// An entry is a view of one event: its text fields point into the reporter's own data and must
// outlive only the log() or toJson() call, so that reporting a request copies none of it.
struct Peer {
  std::string_view workload;  // owning workload name ("reviews-v1"), or the pod name
  std::string_view ns;
  std::string_view principal;  // SPIFFE ID; empty for a plaintext peer
  std::string_view address;    // "10.244.1.11:8080", "[fd00::1]:80"
};

struct Entry {
  absl::Time timestamp;
  Kind kind = Kind::kConnection;
  Reporter reporter = Reporter::kDestination;
  Peer source, destination;
  std::string_view destination_service;  // "reviews.default.svc.cluster.local"; empty if none
  uint64_t bytes_sent = 0;               // towards the client (downstream)
  uint64_t bytes_received = 0;           // from the client
  absl::Duration duration;
  std::optional<int> response_code;  // requests only
  PolicyDecision policy_decision = PolicyDecision::kNone;
  std::string_view policy_name;              // "ns/name" of the deciding policy, if any
  std::string_view trace_id, span_id;        // hex, from the request's traceparent
  std::string_view parent_span_id;           // the caller's span; empty when this hop started it
  int policy_rule = -1;                      // index of the deciding rule in policy_name; -1: none
  std::string_view method, path, authority;  // requests only
  std::string_view response_flags;           // Envoy-style ("UF", "DC"); empty: none
};

// The JSON object for one entry, without a trailing newline. Values the peer controls (names,
// addresses, flags) are escaped; bytes that are not UTF-8 become U+FFFD instead of failing.
std::string toJson(const Entry& entry);
// The same appended to `out`.
void appendJson(std::string& out, const Entry& entry);

class Sink {
 public:
  virtual ~Sink() = default;
  // Writes one complete line; `line` has no newline.
  virtual void write(std::string_view line) = 0;
};

// Writes to a stdio stream (stdout by default), one whole line per call. On most threads each
// line is flushed at once. A thread that called deferFlushes() (an agent worker) leaves its lines
// in the stream's buffer until it calls flushDeferred(), which a worker does before it waits for
// events: the lines of one round of events then reach the stream in one write(2) instead of one
// each (at L7 saturation that write was half of the access log's cost), and a log shipper still
// sees them before the worker sleeps (Envoy's file access log waits up to a second). The stream
// must outlive the threads that write to it.
class FileSink : public Sink {
 public:
  explicit FileSink(std::FILE* file = stdout) : file_(file) {}
  void write(std::string_view line) override;

  // From now on this thread's lines wait for flushDeferred().
  static void deferFlushes();
  // Flushes the stream this thread last left lines in (nothing when none wait).
  static void flushDeferred();

 private:
  std::FILE* file_;
};

// Keeps lines in memory, for tests.
class MemorySink : public Sink {
 public:
  void write(std::string_view line) override;
  std::vector<std::string> lines() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

struct Config {
  bool enabled = true;
  // Share of entries written, 0..1. Connections and requests are sampled independently.
  double sample_rate = 1.0;
  // Seeds the sampling RNG; unset: seeded from std::random_device. Tests set it.
  std::optional<uint64_t> seed;

  absl::Status validate() const;
};

class Logger {
 public:
  // Fails on an invalid config (sample_rate outside 0..1 or NaN). `sink` null: stdout.
  static absl::StatusOr<std::unique_ptr<Logger>> create(const Config& config,
                                                        std::shared_ptr<Sink> sink = nullptr);

  // Returns true if the entry was written, false if logging is off or it was sampled out.
  bool log(const Entry& entry);

  uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  uint64_t sampledOut() const { return sampled_out_.load(std::memory_order_relaxed); }

 private:
  Logger(const Config& config, std::shared_ptr<Sink> sink);
  bool sample();

  const Config config_;
  const std::shared_ptr<Sink> sink_;
  absl::Mutex mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> written_{0}, sampled_out_{0};
};

}  // namespace ferry::accesslog
