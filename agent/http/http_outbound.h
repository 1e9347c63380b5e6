// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The HTTP-aware outbound path (issue 8): a captured connection to a Service VIP:port that has
// an HTTPRoute attached is terminated here and every HTTP/1.1 request is routed on its own:
//   match a rule (none: 404) -> fault injection (abort: that status; delay: a timer) ->
//   RequestRedirect (answered here: status and Location) -> pick a backend Service by weight,
//   then an endpoint of it (routing::Cluster: P2C, outlier detection, circuit breaking;
//   refused: 503) -> the rule's then the backend's filters (request header modifier,
//   URLRewrite of path and Host) -> forward on a keep-alive upstream connection to that
//   endpoint (upstream_pool.h) -> relay the response (response header modifier). A rule's
//   RequestMirror sends a copy, once the request is read whole, fire and forget (http_mirror.h).
// Per-try (backendRequest) and overall (request) timeouts answer 504 from an event-loop timer,
// even when the backend never answers; the upstream connection is then closed. Retries follow
// the rule's policy, the backend's retry budget and routing::retryable(); a request is retried
// only while it is buffered whole (kMaxRetryBodyBytes), bigger bodies stream and are tried once;
// the client is read only while less than 256 KiB of such a body waits here, including while its
// try waits for a connection slot or a fault delay.
// The source hop routes; the destination hop still authorizes (inbound is unchanged).
// The decision is agent/http/route_decision.h, the tries agent/http/upstream_attempts.h; this
// file's code is the client and upstream I/O around them (agent/http/README.md).

#include <memory>
#include <string>

#include "agent/io/sockets.h"
#include "agent/pods/local_pods.h"
#include "agent/worker_context.h"

namespace ferry::agent {

// Request bodies up to this size are buffered so the request can be retried.
inline constexpr size_t kMaxRetryBodyBytes = 64 * 1024;

// Takes `fd` (the app's connection, accepted on 15001, original destination `original`).
void startHttpOutbound(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& source,
                       const SocketAddress& original, const std::string& source_ip, int fd);

}  // namespace ferry::agent
