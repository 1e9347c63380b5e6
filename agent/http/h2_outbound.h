// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The routed outbound path for HTTP/2 with prior knowledge (h2c; what gRPC clients send) (issue
// 22 point 1). The routed outbound (http_outbound.h) hands a connection that opens with the h2
// preface over to this: an nghttp2 server session terminates the client's connection and every
// stream is routed on its own, exactly as an HTTP/1.1 request is: the same decision
// (route_decision.h: matches, fault, weighted backend, filters) and the same upstream attempts
// (upstream_attempts.h: endpoint pick per try, connection slot, timeouts, retries, outcomes).
// Each try goes out as a stream on an h2 connection to the picked endpoint (h2_upstream.h,
// HBONE across nodes), so one long-lived client connection spreads its requests over every
// endpoint. Bodies stream both ways from the first byte (bidirectional gRPC streams work) while
// up to kMaxRetryBodyBytes of the request are kept for a retry; trailers pass both ways. A
// response is retried on its head (a trailers-only gRPC answer carries grpc-status there).
// Flow control is end to end: a client's stream window reopens only as its bytes go upstream,
// and a backend's as they go to the client.
// Not here yet: RequestMirror copies of h2 requests (the rule is applied without its mirror).

#include <memory>
#include <string>
#include <string_view>

#include "agent/http/routed_exchange.h"
#include "agent/worker_context.h"

namespace ferry::agent {

// Takes `fd` (the app's routed connection) and `received`, the bytes read from it so far (the
// preface, and whatever followed it).
void startH2Outbound(WorkerContext& ctx, RoutedClient who, int fd, std::string received);

}  // namespace ferry::agent
