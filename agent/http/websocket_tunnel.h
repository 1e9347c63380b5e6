// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// WebSocket through a routed Service (issue 22): the GET with `Upgrade: websocket` is routed like
// any request (http_outbound.h); once the chosen backend answers 101, the client's connection and
// the upstream one become one byte relay (agent/proxy/tcp_relay.h) for the rest of their lives.

#include <string>
#include <string_view>

#include "agent/worker_context.h"
#include "http/http1_parser.h"
#include "http/request_view.h"

namespace ferry::agent {

// The 101 the client gets: the backend's head as forwarded (`edits` applied) with the
// connection-level fields this hop consumed put back, then `rest` (bytes after the backend's 101).
std::string upgradeResponse(const http::MessageHead& head, const http::HeaderEdits& edits,
                            std::string_view rest);

// Takes both fds and relays them until either side ends. `from_client`: the client's bytes read
// but not parsed, sent upstream first; `to_client` sent to the client first. The relay counts as
// one of the worker's active connections (the routed outbound's, handed on) until it ends.
void startWebSocketTunnel(WorkerContext& ctx, int client, int upstream, std::string from_client,
                          std::string to_client);

}  // namespace ferry::agent
