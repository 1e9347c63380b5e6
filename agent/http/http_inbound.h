// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Inbound connections on HTTP ports: the client's bytes go through userspace/http's sans-IO
// filters (Http1Filter, or Http2Filter when the connection opens with the h2c preface) on their
// way to the app, so every request is authorized (l7_authorizer.h) and only its normalized form
// reaches the app. The relay reads and writes the client's end in place: the client socket
// (plaintext inbound), the HBONE stream itself (relay_end.h: no socketpair, no second relay
// between the tunnel and the filter), or, for a routed request from a pod on this node, an
// in-process pipe (local_pipe.h).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/http/l7_authorizer.h"
#include "agent/io/sockets.h"
#include "agent/pods/local_pods.h"
#include "agent/proxy/hbone_tunnel.h"
#include "agent/telemetry/telemetry.h"
#include "agent/worker_context.h"
#include "http/http1_filter.h"

namespace ferry::agent {

// Starts relaying `downstream` (the client side, connected) to `app` in `pod` (connected here)
// through an HTTP filter on the worker's loop. Takes `downstream`: closed at once when the agent
// has too many connections waiting for request heads (http_waiting.h) or the app is unreachable.
void startHttpInbound(WorkerContext& ctx, int downstream, std::shared_ptr<const LocalPod> pod,
                      const SocketAddress& app, InboundPeer peer);

class PipeEnd;

// For a routed request to an HTTP port of a pod on this node: relays `client`, the inbound side
// of an in-process pipe whose other side is the routed outbound's upstream (local_pipe.h), to
// `app`. The pipe is reset, before any byte, when the relay cannot start or the app is not
// reached.
void startHttpInboundPipe(WorkerContext& ctx, std::unique_ptr<PipeEnd> client,
                          std::shared_ptr<const LocalPod> pod, const SocketAddress& app,
                          InboundPeer peer);

// For HBONE: relays stream `id` of `tunnel` (accepted for an HTTP port of `pod`, not answered
// yet) to `app` through the HTTP filter. The stream is answered once the app's connect completes:
// `respond(200)`, and `open_report()` opens its TCP report, closed with the stream's byte counts;
// or `respond(503)`. A reset from the relay (header timeout, shed for a newer waiter, an error)
// resets the stream. ResourceExhausted, with nothing started, when the agent has too many
// connections waiting for request heads; the connect's error when it cannot start.
absl::Status startHttpInboundStream(WorkerContext& ctx, TunnelConnection& tunnel,
                                    hbone::StreamId id, std::shared_ptr<const LocalPod> pod,
                                    const SocketAddress& app, InboundPeer peer,
                                    std::function<void(int)> respond,
                                    std::function<ConnectionTelemetry()> open_report);

}  // namespace ferry::agent
