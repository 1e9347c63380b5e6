// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Inbound HBONE (15008): terminate mTLS with the destination pod's certificate (the peer is
// verified against the trust bundle and must be a SPIFFE ID of our trust domain), accept a
// CONNECT only for this pod's own address, authorize it, connect to the app inside the pod's
// namespace, and answer 200 only once that connect succeeded.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <tuple>

#include "agent/config.h"
#include "agent/drain/resume_registry.h"
#include "agent/http/http_inbound.h"
#include "agent/identity/certificates.h"
#include "agent/identity/revocation.h"
#include "agent/proxy/hbone_server.h"
#include "agent/proxy/hbone_tunnel.h"
#include "agent/proxy/inbound.h"
#include "agent/proxy/listeners.h"
#include "agent/proxy/outbound.h"
#include "agent/telemetry/telemetry_peers.h"
#include "hbone/baggage.h"
#include "hbone/resume.h"
#include "hbone/server.h"
#include "log/log.h"

namespace ferry::agent {
namespace {

bool agentPort(uint16_t port) {
  return port == kOutboundPort || port == kInboundPlainPort || port == kHbonePort;
}

class InboundConnection : public TunnelConnection {
 public:
  InboundConnection(WorkerContext& ctx, int fd, std::shared_ptr<const LocalPod> pod,
                    std::string peer_ip)
      : TunnelConnection(ctx, fd, /*connecting=*/false, /*client=*/false),
        pod_(std::move(pod)),
        peer_ip_(std::move(peer_ip)) {
    ctx_.inbound_tunnels.insert(this);
    ctx_.shared.inbound_tunnels_open.fetch_add(1, std::memory_order_relaxed);
  }
  ~InboundConnection() override {
    ctx_.inbound_tunnels.erase(this);
    ctx_.shared.inbound_tunnels_open.fetch_sub(1, std::memory_order_relaxed);
    for (const auto& [stream, id] : revocable_) {
      revocationsOf(ctx_).remove(id);
    }
    for (const auto& [stream, side] : offers_) {
      ctx_.shared.resumes->remove(side.token);
    }
    for (const Resumed& r : resumed_) {
      closeWithReset(r.stream.app_fd);  // its connection went before the stream could continue
    }
  }

  std::string localPodUid() const override { return pod_->info.uid; }

  absl::Status init(std::shared_ptr<const tls::TlsContext> tls_ctx) {
    hbone::HboneSettings settings;
    settings.max_concurrent_streams = ctx_.shared.config->max_streams_per_connection;
    settings.batch_output = true;  // TunnelConnection::writeOut produces
    auto server = hbone::HboneServer::create(
        std::move(tls_ctx), [this](const hbone::StreamRequest& r) { return decide(r); }, settings);
    if (!server.ok()) {
      return server.status();
    }
    server_ = server->get();
    setConnection(*std::move(server));
    return absl::OkStatus();
  }

 protected:
  void afterEvents() override {
    // Connect to the app for streams accepted in decide(); done here, outside nghttp2's
    // callbacks, because the answer (respond) must not be sent from inside them.
    auto pending = std::move(pending_);
    pending_.clear();
    for (const auto& [id, app, report] : pending) {
      startApp(id, app, report);
    }
    auto resumed = std::move(resumed_);
    resumed_.clear();
    for (Resumed& r : resumed) {
      continueResumed(r.id, std::move(r.stream), r.peer_delivered);
    }
  }

 private:
  int decide(const hbone::StreamRequest& r) {
    ctx_.stats.inc(ctx_.stats.inbound_hbone_streams);
    sockaddr_storage ss{};
    socklen_t len = r.authority.toSockaddr(&ss);
    SocketAddress app = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    const auto& ips = pod_->info.ips;
    if (std::find(ips.begin(), ips.end(), app.ip()) == ips.end() || agentPort(app.port())) {
      ctx_.stats.inc(ctx_.stats.inbound_hbone_bad_authority);
      LOG_INFO_EVERY_SECOND("inbound HBONE from ", r.peer.uri(), " to ", pod_->info.name,
                            ": :authority ", r.authority.toString(), " is not this pod's address");
      return 400;
    }
    auto state = ctx_.shared.workloads->current();
    model::Workload fallback;
    const model::Workload* w = &workloadOf(*state, *pod_, fallback);
    ConnectionAttributes attrs;
    attrs.principal = r.peer.trust_domain + "/ns/" + r.peer.ns + "/sa/" + r.peer.service_account;
    attrs.source_namespace = r.peer.ns;
    attrs.source_ip = peer_ip_;
    attrs.destination_ip = app.ip();
    attrs.destination_port = app.port();
    attrs.http = isHttpPort(state->snapshot(), *w, app.port());
    Decision d = state->policies().authorize(*w, attrs, &ctx_.stats);
    ConnectionInfo report = inboundReport(
        *state, *pod_,
        {.principal = attrs.principal, .mtls = true, .ip = peer_ip_, .address = peer_ip_}, app, d);
    std::optional<hbone::Baggage> baggage = believedBaggage(r);
    if (baggage) {
      adoptBaggage(report, *baggage);
    }
    if (!d.allowed) {
      ctx_.shared.telemetry->connectionDenied(report);
      ctx_.stats.inc(ctx_.stats.policy_denied);
      LOG_INFO_EVERY_SECOND("inbound HBONE ", r.peer.uri(), " -> ", pod_->info.name, " ", app.str(),
                            ": denied: ", d.reason);
      return 403;
    }
    std::optional<hbone::ResumeHeader> resume;
    if (ctx_.shared.resumes != nullptr && !r.resume.empty() && !attrs.http) {
      resume = hbone::parseResume(r.resume);  // HTTP ports are never offered: no resumption
    }
    if (resume && resume->isResume()) {
      int status = decideResume(r, *resume);
      if (status == hbone::kDeferDecision) {
        watchPolicy(r.id, *w, std::move(attrs));
      }
      return status;
    }
    if (attrs.http) {
      http_streams_[r.id] = InboundPeer{r.peer.uri(), peer_ip_, app.ip(), app.port(), baggage};
    } else if (!admitConnectionRate(ctx_.shared.rate_limits, ctx_.stats, *pod_, app.port(),
                                    r.peer.uri(), r.peer.uri())) {
      return 429;  // the source resets its client's connection
    }
    if (resume && resume->isOffer() && ctx_.shared.resumes->add(*resume->token)) {
      server_->setResumeAnswer(r.id, hbone::formatResume({}));  // "v1": accepted
      ResumableSide& side = offers_[r.id];
      side.role = HandedStream::Role::kServer;
      side.token = *resume->token;
      side.authority = r.authority.toString();  // with the peer, what binds a resume
    }
    pending_.emplace_back(r.id, app, std::move(report));
    watchPolicy(r.id, *w, std::move(attrs));
    return hbone::kDeferDecision;
  }

  // A resume CONNECT (docs/upgrades.md), already authorized as a new stream would be: the parked
  // stream it names continues here once afterEvents() has built its bridge.
  int decideResume(const hbone::StreamRequest& r, const hbone::ResumeHeader& h) {
    ResumeRegistry::Answer a =
        ctx_.shared.resumes->resume(*h.token, r.peer, r.authority.toString(),
                                    ctx_.shared.expecting_streams.load(std::memory_order_relaxed));
    if (a.status == hbone::kResumeRetry) {
      server_->setResumeAnswer(r.id, hbone::formatResume({.retry = true}));
    }
    if (a.status != 200) {
      LOG_DEBUG("resume from ", r.peer.uri(), " to ", r.authority.toString(), ": ", a.status);
      return a.status;
    }
    server_->setResumeAnswer(r.id, hbone::formatResume({.delivered = a.stream->delivered}));
    resumed_.push_back({r.id, *std::move(a.stream), *h.delivered});
    return hbone::kDeferDecision;
  }

  void continueResumed(hbone::StreamId id, HandedStream stream, uint64_t peer_delivered) {
    auto* bridge = new StreamBridge(ctx_, this, id, stream.app_fd, /*fd_connecting=*/false,
                                    /*client=*/false);
    attach(id, bridge);
    if (!bridge->continueFrom(std::move(stream), peer_delivered)) {
      ctx_.stats.inc(ctx_.stats.streams_resume_failed);
      conn().reset(id, NGHTTP2_PROTOCOL_ERROR);
      bridge->abort();  // the offsets cannot be reconciled: both app sockets are reset
      return;
    }
    bridge->start();
    (void)server_->respond(id, 200);
    bridge->onTunnelWritable();  // the replay first
  }

  // The source's baggage when the peer certificate backs it; a claim it contradicts is
  // counted (ferry_baggage_rejected_total) and ignored, so the node view names the source.
  std::optional<hbone::Baggage> believedBaggage(const hbone::StreamRequest& r) {
    if (r.baggage.empty()) {
      return std::nullopt;
    }
    hbone::Baggage b = hbone::decodeBaggage(r.baggage);
    std::string why;
    if (!hbone::believeBaggage(b, r.peer, &why)) {
      static LogLimiter limiter;
      ctx_.stats.inc(ctx_.stats.baggage_rejected);
      LOG_WARN_LIMITED(limiter, "inbound HBONE from ", r.peer.uri(), " to ", pod_->info.name,
                       ": baggage ignored: ", why);
      return std::nullopt;
    }
    return b;
  }

  // A later policy that denies the stream resets it (revocation.h). Entries of finished streams
  // are dropped as new streams come, so a long-lived pooled connection keeps few.
  void watchPolicy(hbone::StreamId stream, const model::Workload& w, ConnectionAttributes attrs) {
    Revocations& revocations = revocationsOf(ctx_);
    if (revocable_.size() > 2 * bridges_.size() + 16) {
      std::erase_if(revocable_, [&](const auto& entry) {
        bool gone = !bridges_.contains(entry.first);
        if (gone) {
          revocations.remove(entry.second);
        }
        return gone;
      });
    }
    revocable_[stream] = revocations.add(w, std::move(attrs), [this, stream] {
      revocable_.erase(stream);
      if (closed()) {
        return false;
      }
      // Only a stream still open is revoked: one whose bridge ended (its entry lingers until the
      // next sweep above) or that never reached its app is not counted or logged.
      auto bridge = bridges_.find(stream);
      bool pending = std::any_of(pending_.begin(), pending_.end(),
                                 [&](const auto& p) { return std::get<0>(p) == stream; });
      if (bridge == bridges_.end() && !pending) {
        return false;
      }
      conn().reset(stream);
      if (bridge != bridges_.end()) {
        bridge->second->abort();
      }
      flush();
      return true;
    });
  }

  void startApp(hbone::StreamId id, const SocketAddress& app, const ConnectionInfo& report) {
    if (auto l7 = http_streams_.extract(id)) {
      startHttpApp(id, app, std::move(l7.mapped()), report);
      return;
    }
    auto fd = connectToApp(*ctx_.shared.sockets, *pod_, app);
    auto offer = offers_.extract(id);
    if (!fd.ok()) {
      ctx_.stats.inc(ctx_.stats.inbound_app_connect_failed);
      forgetOffer(offer);
      (void)server_->respond(id, 503);
      return;
    }
    auto* bridge = new StreamBridge(ctx_, this, id, *fd, /*fd_connecting=*/true,
                                    /*client=*/false);
    attach(id, bridge);
    auto side = offer ? std::make_shared<ResumableSide>(std::move(offer.mapped())) : nullptr;
    bridge->setOnConnected([this, id, bridge, report, side](bool ok) {
      if (closed()) {
        if (side) {
          ctx_.shared.resumes->remove(side->token);
        }
        return;
      }
      if (!ok) {
        ctx_.stats.inc(ctx_.stats.inbound_app_connect_failed);
        if (side) {
          ctx_.shared.resumes->remove(side->token);
        }
        (void)server_->respond(id, 503);
        bridge->abort();
      } else {
        if (side) {
          bridge->acceptResume(std::move(*side));
        }
        bridge->setOpened();
        bridge->setTelemetry(ctx_.shared.telemetry->openConnection(report));
        (void)server_->respond(id, 200);
      }
      flush();
    });
    bridge->start();
  }

  // An HTTP port: the inbound HTTP relay reads and writes the stream itself, and answers it once
  // the app is reached (never offered resumption).
  void startHttpApp(hbone::StreamId id, const SocketAddress& app, InboundPeer peer,
                    const ConnectionInfo& report) {
    absl::Status started = startHttpInboundStream(
        ctx_, *this, id, pod_, app, std::move(peer),
        [this, id](int status) { (void)server_->respond(id, status); },
        [this, report] { return ctx_.shared.telemetry->openConnection(report); });
    if (!started.ok()) {
      ctx_.stats.inc(ctx_.stats.inbound_app_connect_failed);
      (void)server_->respond(id, 503);
    }
  }

  void forgetOffer(std::map<hbone::StreamId, ResumableSide>::node_type& offer) {
    if (offer) {
      ctx_.shared.resumes->remove(offer.mapped().token);
    }
  }

  struct Resumed {
    hbone::StreamId id;
    HandedStream stream;
    uint64_t peer_delivered;
  };

  std::shared_ptr<const LocalPod> pod_;
  std::string peer_ip_;
  std::map<hbone::StreamId, ResumableSide> offers_;  // accepted offers until the app connects
  std::vector<Resumed> resumed_;                     // resumes to continue in afterEvents()
  hbone::HboneServer* server_ = nullptr;
  std::vector<std::tuple<hbone::StreamId, SocketAddress, ConnectionInfo>> pending_;
  std::map<hbone::StreamId, InboundPeer> http_streams_;  // accepted streams on HTTP ports
  std::map<hbone::StreamId, Revocations::Id> revocable_;
};

}  // namespace

namespace {
void forEachInboundTunnel(WorkerContext& ctx, void (hbone::HboneConnection::*step)()) {
  std::vector<TunnelConnection*> all(ctx.inbound_tunnels.begin(), ctx.inbound_tunnels.end());
  for (TunnelConnection* t : all) {
    if (ctx.inbound_tunnels.count(t) != 0 && !t->closed()) {  // a flush may have ended one
      (t->conn().*step)();
      t->flush();
    }
  }
}
}  // namespace

void drainInboundTunnels(WorkerContext& ctx) {
  // The shutdown notice first; the final GOAWAY (streams after the last one taken are refused)
  // once any stream the peer opened before it saw the notice has arrived.
  forEachInboundTunnel(ctx, &hbone::HboneConnection::announceDrain);
  ctx.loop.addTimer(std::chrono::milliseconds(200),
                    [&ctx] { forEachInboundTunnel(ctx, &hbone::HboneConnection::drain); });
}

void acceptHbone(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& pod, int fd) {
  sockaddr_storage peer{};
  socklen_t peer_len = sizeof(peer);
  std::string peer_ip;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0) {
    peer_ip = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&peer), peer_len).ip();
  }
  auto state = ctx.shared.workloads->current();
  PodIdentity id = identityOf(*pod, state->workloadByUid(pod->info.uid));
  auto tls_ctx = ctx.shared.certs->contextFor(id.ns, id.service_account);
  if (!tls_ctx.ok()) {
    LOG_WARN_EVERY_SECOND("inbound HBONE to ", pod->info.name, ": no certificate for ", id.ns, "/",
                          id.service_account, ": ", tls_ctx.status().ToString());
    ctx.stats.inc(ctx.stats.tls_handshake_failures);
    closeWithReset(fd);
    return;
  }
  auto* conn = new InboundConnection(ctx, fd, pod, peer_ip);
  if (auto s = conn->init(*tls_ctx); !s.ok()) {
    LOG_WARN_EVERY_SECOND("inbound HBONE: ", s.ToString());
    conn->close("server setup failed");
    return;
  }
  conn->flush();
}

}  // namespace ferry::agent
