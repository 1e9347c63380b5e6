// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Outbound HBONE: pooled client connections and the start of a tunnelled stream.
#include <algorithm>

#include "agent/config.h"
#include "agent/identity/certificates.h"
#include "agent/proxy/hbone_client.h"
#include "agent/proxy/hbone_pool.h"
#include "agent/proxy/hbone_tunnel.h"
#include "agent/proxy/outbound.h"
#include "agent/telemetry/telemetry_peers.h"
#include "hbone/client.h"
#include "log/log.h"

namespace ferry::agent {

class PooledClient : public TunnelConnection {
 public:
  PooledClient(WorkerContext& ctx, int fd, std::string key, std::unique_ptr<hbone::HboneClient> c)
      : TunnelConnection(ctx, fd, /*connecting=*/true, /*client=*/true),
        key_(std::move(key)),
        client_conn_(c.get()) {
    setConnection(std::move(c));
    handshake_timer_ = ctx_.loop.addTimer(
        std::chrono::milliseconds(ctx_.shared.config->connect_timeout_ms), [this] {
          handshake_timer_ = 0;
          if (!conn().handshakeDone()) {
            close("TLS handshake timed out");
          }
        });
  }
  ~PooledClient() override { cancelTimers(); }

  hbone::HboneClient& client() { return *client_conn_; }
  // The peer's SETTINGS_MAX_CONCURRENT_STREAMS and our own --max-streams-per-connection.
  bool acceptsStreams() const {
    return !closed() && client_conn_->acceptsNewStreams() &&
           client_conn_->activeStreams() < ctx_.shared.config->max_streams_per_connection;
  }
  const std::string& key() const { return key_; }

 protected:
  void onHandshakeDone() override {
    if (handshake_timer_ != 0) {
      ctx_.loop.cancelTimer(handshake_timer_);
      handshake_timer_ = 0;
    }
  }
  void afterEvents() override {
    if (bridgeCount() == 0 && idle_timer_ == 0 && !closed()) {
      idle_timer_ = ctx_.loop.addTimer(
          std::chrono::milliseconds(ctx_.shared.config->pool_idle_timeout_ms), [this] {
            idle_timer_ = 0;
            if (bridgeCount() == 0) {
              ctx_.pool->remove(key_, this);
              conn().drain();
              close("idle");
            }
          });
    } else if (bridgeCount() > 0 && idle_timer_ != 0) {
      ctx_.loop.cancelTimer(idle_timer_);
      idle_timer_ = 0;
    }
  }
  void onClosing() override {
    cancelTimers();
    ctx_.pool->remove(key_, this);
  }

 private:
  void cancelTimers() {
    for (EventLoop::TimerId* t : {&handshake_timer_, &idle_timer_}) {
      if (*t != 0) {
        ctx_.loop.cancelTimer(*t);
        *t = 0;
      }
    }
  }

  std::string key_;
  hbone::HboneClient* client_conn_;
  EventLoop::TimerId handshake_timer_ = 0;
  EventLoop::TimerId idle_timer_ = 0;
};

HbonePool::~HbonePool() {
  // Connections are owned by the loop (deleteLater); at shutdown they go with the process.
}

PooledClient* HbonePool::find(const std::string& key) {
  auto it = conns_.find(key);
  if (it == conns_.end()) {
    return nullptr;
  }
  for (PooledClient* c : it->second) {
    if (c->acceptsStreams()) {
      return c;
    }
  }
  return nullptr;
}

void HbonePool::add(const std::string& key, PooledClient* conn) {
  conns_[key].push_back(conn);
}

void HbonePool::remove(const std::string& key, PooledClient* conn) {
  auto it = conns_.find(key);
  if (it == conns_.end()) {
    return;
  }
  std::erase(it->second, conn);
  if (it->second.empty()) {
    conns_.erase(it);
  }
}

size_t HbonePool::size() const {
  size_t n = 0;
  for (const auto& [k, v] : conns_) {
    n += v.size();
  }
  return n;
}

namespace {

PooledClient* openConnection(WorkerContext& ctx, const LocalPod& source,
                             const PodIdentity& identity, const Destination& dest,
                             const std::string& key) {
  auto tls_ctx = ctx.shared.certs->contextFor(identity.ns, identity.service_account);
  if (!tls_ctx.ok()) {
    LOG_WARN_EVERY_SECOND("outbound from ", source.info.name, ": no certificate for ", identity.ns,
                          "/", identity.service_account, ": ", tls_ctx.status().ToString());
    return nullptr;
  }
  tls::SpiffeId expected{ctx.shared.workloads->current()->trustDomain(), dest.workload->key.ns,
                         dest.workload->service_account};
  auto client = hbone::HboneClient::create(*tls_ctx, expected);
  if (!client.ok()) {
    LOG_WARN_EVERY_SECOND("outbound HBONE client: ", client.status().ToString());
    return nullptr;
  }
  auto to = SocketAddress::parse(dest.ip, kHbonePort);
  if (!to.ok()) {
    return nullptr;
  }
  auto fd = ctx.shared.sockets->tcpSocketIn(source.netns, to->family());
  if (!fd.ok()) {
    LOG_WARN_EVERY_SECOND("outbound socket in ", source.info.name, ": ", fd.status().ToString());
    return nullptr;
  }
  if (auto s = startConnect(*fd, *to); !s.ok()) {
    ::close(*fd);
    LOG_INFO_EVERY_SECOND("outbound from ", source.info.name, ": ", s.ToString());
    return nullptr;
  }
  auto* conn = new PooledClient(ctx, *fd, key, *std::move(client));
  ctx.pool->add(key, conn);
  ctx.stats.inc(ctx.stats.pool_connections_opened);
  return conn;
}

}  // namespace

void startHboneOutbound(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& source,
                        const PodIdentity& identity, const Destination& dest,
                        const std::string& source_ip, int downstream_fd) {
  const std::string key = source->info.uid + "|" + dest.ip;
  PooledClient* conn = ctx.pool->find(key);
  if (conn != nullptr) {
    ctx.stats.inc(ctx.stats.pool_streams_reused);
  } else {
    conn = openConnection(ctx, *source, identity, dest, key);
    if (conn == nullptr) {
      ctx.stats.inc(ctx.stats.outbound_failed);
      closeWithReset(downstream_fd);
      return;
    }
  }
  auto state = ctx.shared.workloads->current();
  auto target = SocketAddress::parse(dest.ip, dest.port);
  auto authority = hbone::Authority::parse(target->str());
  // Who we are, for the destination's telemetry; it believes only what our certificate proves.
  const std::string baggage = hbone::encodeBaggage(
      sourceBaggage(*state, *source, identity, ctx.shared.config->cluster_name));
  auto stream = authority.ok() ? conn->client().openStream(*authority, baggage)
                               : absl::StatusOr<hbone::StreamId>(authority.status());
  if (!stream.ok()) {
    LOG_WARN_EVERY_SECOND("outbound ", source->info.name, " -> ", target->str(), ": ",
                          stream.status().ToString());
    ctx.stats.inc(ctx.stats.outbound_failed);
    closeWithReset(downstream_fd);
    conn->flush();
    return;
  }
  auto* bridge = new StreamBridge(ctx, conn, *stream, downstream_fd, /*fd_connecting=*/false,
                                  /*client=*/true);
  conn->attach(*stream, bridge);
  bridge->setTelemetry(ctx.shared.telemetry->openConnection(outboundReport(
      *state,
      {.pod = *source, .principal = principalOf(state->trustDomain(), identity), .ip = source_ip},
      dest, /*mtls=*/true, nullptr)));
  bridge->start();
  conn->flush();
}

}  // namespace ferry::agent
