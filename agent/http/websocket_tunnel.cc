// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/websocket_tunnel.h"

#include "agent/http/http_messages.h"
#include "agent/proxy/tcp_relay.h"

namespace ferry::agent {

std::string upgradeResponse(const http::MessageHead& head, const http::HeaderEdits& edits,
                            std::string_view rest) {
  std::string out = forwardedResponseHead(head, /*close=*/false, edits);
  out.insert(out.size() - 2, "connection: upgrade\r\nupgrade: websocket\r\n");
  out.append(rest);
  return out;
}

void startWebSocketTunnel(WorkerContext& ctx, int client, int upstream, std::string from_client,
                          std::string to_client) {
  Stats* stats = &ctx.stats;
  TcpRelay::start(
      ctx.loop, client, upstream, /*b_connecting=*/false,
      {.max_buffer = ctx.shared.config->max_buffer_bytes,
       .connect_timeout_ms = ctx.shared.config->connect_timeout_ms},
      [stats](const RelayResult& r) {
        stats->inc(stats->connections_active, -1);
        stats->inc(stats->bytes_sent_upstream, static_cast<int64_t>(r.bytes_a_to_b));
        stats->inc(stats->bytes_sent_downstream, static_cast<int64_t>(r.bytes_b_to_a));
      },
      from_client, to_client);
}

}  // namespace ferry::agent
