// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The HTTP/1.1 load generator: one thread, one epoll loop, non-blocking sockets.
//
// Open loop (rate > 0): requests are due on a fixed schedule spread round-robin over the
// connections; a request whose connection is still busy waits in that connection's queue and
// its latency still counts from when it was due (no coordinated omission). Closed loop
// (rate == 0): each connection sends its next request as soon as the last one completes, which
// finds the saturation rate. With new_connection_per_request every request opens its own TCP
// connection and asks the server to close it.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "loadgen/histogram.h"

namespace ferry::loadgen {

struct Target {
  std::string host;  // numeric IPv4 or IPv6 address
  uint16_t port = 0;
  std::string path = "/";
};

// "10.0.0.1:8080/path", "[fd00::1]:80" -> Target; clear errors for anything else.
absl::StatusOr<Target> parseTarget(const std::string& text);

struct LoadOptions {
  Target target;
  double rate = 0;  // requests per second; 0: closed loop
  int connections = 4;
  double seconds = 10;
  bool new_connection_per_request = false;
  double drain_seconds = 5;  // after `seconds`, how long in-flight requests may still finish
  // Open loop: offer exactly this many requests at `rate` (`seconds` becomes requests / rate).
  uint64_t requests = 0;
  // Request i carries header_lines[i % size] ("Name: value"), e.g. a bearer token each.
  std::vector<std::string> header_lines;
};

struct LoadResult {
  uint64_t completed = 0;          // 2xx responses
  uint64_t bad_status = 0;         // complete responses that were not 2xx
  uint64_t errors = 0;             // connect failures, resets, truncated responses, drain timeouts
  uint64_t connects = 0;           // TCP connections opened
  double seconds = 0;              // from the first due request to the last completion
  Histogram latency;               // of completed requests, from their intended start
  std::map<int, uint64_t> status;  // complete responses by status code
  uint64_t retry_after = 0;        // 429s carrying Retry-After
  std::vector<std::string> retry_after_values;  // the first few
  // The client's clock, for a server's-eye bound (rate limits): from the first answer to the
  // last send (the far end saw at least this span) and from the first send to the last answer
  // (at most this span). A request is "sent" when it is handed to its connection.
  double span_min_s = 0;
  double span_max_s = 0;
  double rps() const { return seconds > 0 ? static_cast<double>(completed) / seconds : 0; }
};

absl::StatusOr<LoadResult> runLoad(const LoadOptions& options);

// Opens `count` connections, makes one request on each (so every hop on the path is set up)
// and returns them open and idle. Connects `batch` at a time.
absl::StatusOr<std::vector<int>> holdConnections(const Target& target, int count);

// Raises RLIMIT_NOFILE to its hard limit (10,000 held connections need it).
void raiseFileLimit();

}  // namespace ferry::loadgen
