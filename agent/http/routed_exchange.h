// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// One request/response exchange of the routed outbound path (http_outbound.h) as its client
// connection holds it, and its source-side report (reporter="source": istio_requests_total & co
// and the access-log line; the destination's agent reports the same request as
// reporter="destination").

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "agent/http/route_decision.h"
#include "agent/http/upstream_pool.h"
#include "agent/io/connection.h"
#include "agent/pods/local_pods.h"
#include "agent/state/route_state.h"
#include "agent/state/workload_state.h"
#include "http/http1_parser.h"

namespace ferry::agent {

class Telemetry;

// Where a routed client connection comes from and goes to.
struct RoutedClient {
  std::shared_ptr<const LocalPod> pod;
  model::ObjectKey service;  // the routed Service
  std::string vip;
  uint16_t port = 0;
  std::string source_ip;
};

// One at a time per client connection: later pipelined requests wait in the input buffer.
struct RoutedExchange {
  bool active = false;
  std::shared_ptr<const RoutingView> view;  // held to the end: a route change spares it
  std::shared_ptr<const WorkloadState> state;
  RouteDecision route;
  std::string method;
  bool head_request = false;
  bool keep_alive = true;
  std::string body;  // wire bytes, while buffered for retries
  bool body_complete = false;
  bool streaming = false;  // body beyond kMaxRetryBodyBytes: forwarded as it comes, one try
  bool dispatched = false;
  bool forwarding = false;  // the upstream attempts were begun
  // The current try's upstream connection (its link, pool key and use count) and response.
  UpstreamConn conn;
  std::unique_ptr<http::Http1Parser> resp;
  bool resp_bytes = false;  // the backend sent something on this try
  int status = 0;
  uint64_t drained = 0;  // body bytes of a response read for a retry
  // For the report, once per request.
  std::chrono::steady_clock::time_point started;
  std::string path;
  uint64_t request_bytes = 0;     // body bytes from the client
  uint64_t response_bytes = 0;    // body bytes to the client
  int answered = 0;               // the status the client got; 0: none (connection reset)
  const char* flags = "";         // Envoy's response flags for a local answer
  const char* protocol = "http";  // Istio's request_protocol: "http" or "grpc"
  int grpc_status = -1;           // gRPC: from grpc-status (trailers, or a trailers-only head)
  bool reported = false;
};

// Reports `x` once to `telemetry` (no-op when inactive or reported). `endpoint`: of its last try,
// when it was forwarded and one was picked; otherwise the VIP is reported as the destination.
// `workloads` gives the state for an exchange refused before it took one.
void reportExchange(const WorkloadStateHolder& workloads, Telemetry& telemetry,
                    const RoutedClient& client, RoutedExchange& x,
                    const std::optional<routing::EndpointRef>& endpoint);

}  // namespace ferry::agent
