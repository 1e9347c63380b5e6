// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Sends finished spans to an OpenTelemetry collector over OTLP/HTTP (otlp.h), batched, from a
// thread of its own so that no caller ever waits on the network.
//
// enqueue() only takes a mutex for a push onto a bounded queue: when the queue is full (the
// collector is slow, away or dead) the span is dropped and counted, so a dead collector costs at
// most max_queue_spans spans of memory. The thread sends a batch when max_batch_spans are
// waiting or the oldest waiting span is flush_interval old. A failed export (no connection, a
// timeout, a non-2xx answer) is counted and its spans are dropped, not retried: retrying would
// hold spans while new ones are refused, and traces are sampled data, so newer spans are worth
// more than older ones.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "trace/span.h"

namespace ferry::trace {

inline constexpr size_t kDefaultMaxQueueSpans = 4096;
inline constexpr size_t kDefaultMaxBatchSpans = 512;
inline constexpr absl::Duration kDefaultFlushInterval = absl::Seconds(1);
inline constexpr absl::Duration kDefaultExportTimeout = absl::Seconds(5);

struct ExporterConfig {
  std::string endpoint;  // "http://collector:4318/v1/traces"
  size_t max_queue_spans = kDefaultMaxQueueSpans;
  size_t max_batch_spans = kDefaultMaxBatchSpans;
  absl::Duration flush_interval = kDefaultFlushInterval;
  absl::Duration timeout = kDefaultExportTimeout;  // per export request, connect included
  // Called on the exporter's thread for each failed export (the agent logs it, rate-limited).
  std::function<void(const absl::Status&)> on_error;

  absl::Status validate() const;
};

// Where a batch goes. The real one POSTs to the collector; tests put a fake in its place.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual absl::Status post(const std::string& body) = 0;
};

// POST <endpoint> with Content-Type application/x-protobuf (libcurl; http:// and https://),
// keeping the connection for the next batch.
absl::StatusOr<std::unique_ptr<Transport>> otlpHttpTransport(const ExporterConfig& config);

class SpanExporter {
 public:
  struct Counts {
    uint64_t exported = 0;  // spans the collector accepted
    uint64_t failed = 0;    // spans in exports that failed
    uint64_t dropped = 0;   // spans refused because the queue was full
    uint64_t queued = 0;    // spans waiting now
  };

  // `transport` null: otlpHttpTransport(config).
  static absl::StatusOr<std::unique_ptr<SpanExporter>> create(
      const ExporterConfig& config, std::unique_ptr<Transport> transport = nullptr);
  // Sends what is queued (one last try, bounded by the timeout; none when the last export
  // failed) and stops the thread: at most two timeouts with an export under way.
  ~SpanExporter();

  // Never waits for I/O. False: the queue was full and the span was dropped.
  bool enqueue(Span span);
  // Asks the thread to send everything queued now (not waiting for a full batch).
  void flush();
  Counts counts() const;

 private:
  SpanExporter(const ExporterConfig& config, std::unique_ptr<Transport> transport);
  void run();
  bool exportBatch(const std::vector<Span>& batch);

  const ExporterConfig config_;
  std::unique_ptr<Transport> transport_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Span> queue_;                        // guarded by mu_
  std::chrono::steady_clock::time_point oldest_;  // of queue_'s first span
  bool flush_requested_ = false;                  // guarded by mu_
  bool stopping_ = false;                         // guarded by mu_
  std::atomic<uint64_t> exported_{0}, failed_{0}, dropped_{0};
  std::thread thread_;
};

}  // namespace ferry::trace
