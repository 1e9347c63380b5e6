// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Inbound connections on HTTP ports: the client's bytes go through userspace/http's sans-IO
// filters (Http1Filter, or Http2Filter when the connection opens with the h2c preface) on their
// way to the app, so every request is authorized (l7_authorizer.h) and only its normalized form
// reaches the app. Plaintext inbound hands over the client socket itself; HBONE hands over one
// end of a socketpair whose other end its StreamBridge feeds (the tunnel code stays unaware of
// HTTP).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/http/l7_authorizer.h"
#include "agent/io/sockets.h"
#include "agent/pods/local_pods.h"
#include "agent/worker_context.h"
#include "http/http1_filter.h"

namespace ferry::agent {

// Starts relaying `downstream` (the client side, connected) to `app` in `pod` (connected here)
// through an HTTP filter on the worker's loop. Takes `downstream`: closed at once when the agent
// has too many connections waiting for request heads (http_waiting.h) or the app is unreachable.
void startHttpInbound(WorkerContext& ctx, int downstream, std::shared_ptr<const LocalPod> pod,
                      const SocketAddress& app, InboundPeer peer);

// For HBONE: connects to `app` in `pod` through the HTTP filter and returns the socket the
// stream bridge should use in place of the app's (already connected). ResourceExhausted when
// the agent has too many connections waiting for request heads.
// `on_reset` runs when the relay resets the client (header timeout, shed for a newer waiter, an
// error), so the stream is reset at once instead of seeing a half-close the client may ignore.
absl::StatusOr<int> connectToAppHttp(WorkerContext& ctx, std::shared_ptr<const LocalPod> pod,
                                     const SocketAddress& app, InboundPeer peer,
                                     std::function<void()> on_reset);

}  // namespace ferry::agent
