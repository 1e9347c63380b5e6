// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Outbound HBONE: pooled client connections and the start of a tunnelled stream.
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>

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
  std::string localPodUid() const override { return key_.substr(0, key_.find('|')); }

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
  PooledClient* least = nullptr;
  for (PooledClient* c : it->second) {
    if (c->acceptsStreams() && (least == nullptr || c->bridgeCount() < least->bridgeCount())) {
      least = c;
    }
  }
  if (least != nullptr && least->bridgeCount() > 0 && it->second.size() < spread_) {
    return nullptr;  // spread: a connection of its own for this concurrent stream
  }
  return least;
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

// A new pooled connection from `source` (with the certificate of `identity`) to `dial`:15008,
// pinning the destination workload's identity `expected`.
PooledClient* openConnection(WorkerContext& ctx, const LocalPod& source,
                             const PodIdentity& identity, const tls::SpiffeId& expected,
                             const std::string& dial, const std::string& key) {
  auto tls_ctx = ctx.shared.certs->contextFor(identity.ns, identity.service_account);
  if (!tls_ctx.ok()) {
    LOG_WARN_EVERY_SECOND("outbound from ", source.info.name, ": no certificate for ", identity.ns,
                          "/", identity.service_account, ": ", tls_ctx.status().ToString());
    return nullptr;
  }
  auto client = hbone::HboneClient::create(*tls_ctx, expected, {.batch_output = true});
  if (!client.ok()) {
    LOG_WARN_EVERY_SECOND("outbound HBONE client: ", client.status().ToString());
    return nullptr;
  }
  auto to = SocketAddress::parse(dial, kHbonePort);
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

std::string poolKey(const LocalPod& source, const std::string& dial) {
  return source.info.uid + "|" + dial;
}

// A pooled connection for the key, or a new one; null when none can be opened.
PooledClient* connectionFor(WorkerContext& ctx, const LocalPod& source, const PodIdentity& identity,
                            const tls::SpiffeId& expected, const std::string& dial) {
  const std::string key = poolKey(source, dial);
  if (PooledClient* conn = ctx.pool->find(key)) {
    ctx.stats.inc(ctx.stats.pool_streams_reused);
    return conn;
  }
  return openConnection(ctx, source, identity, expected, dial, key);
}

// Only an app's TCP connection can be handed to another agent: the routed HTTP path's upstream
// connections are socketpairs whose other end lives in this process.
bool appSocket(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  return ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 &&
         (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
}

}  // namespace

absl::StatusOr<ClientStream> openClientStream(WorkerContext& ctx, const LocalPod& source,
                                              const PodIdentity& identity,
                                              const WorkloadState& state, const Destination& dest,
                                              const std::string& resume_header) {
  const tls::SpiffeId expected{state.trustDomain(), dest.workload->key.ns,
                               dest.workload->service_account};
  PooledClient* conn = connectionFor(ctx, source, identity, expected, dest.ip);
  if (conn == nullptr) {
    return absl::UnavailableError("no HBONE connection to " + dest.ip);
  }
  auto target = SocketAddress::parse(dest.ip, dest.port);
  if (!target.ok()) {
    return target.status();
  }
  auto authority = hbone::Authority::parse(target->str());
  if (!authority.ok()) {
    return authority.status();
  }
  // Who we are, for the destination's telemetry; it believes only what our certificate proves.
  const std::string baggage =
      hbone::encodeBaggage(sourceBaggage(state, source, identity, ctx.shared.config->cluster_name));
  auto stream = conn->client().openStream(*authority, baggage, resume_header);
  if (!stream.ok()) {
    conn->flush();
    return stream.status();
  }
  return ClientStream{.tunnel = conn, .id = *stream};
}

void startHboneOutbound(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& source,
                        const PodIdentity& identity, const Destination& dest,
                        const std::string& source_ip, int downstream_fd) {
  auto state = ctx.shared.workloads->current();
  auto target = SocketAddress::parse(dest.ip, dest.port);
  auto authority = target.ok() ? hbone::Authority::parse(target->str())
                               : absl::StatusOr<hbone::Authority>(target.status());
  // Offered for resumption (docs/upgrades.md); the destination accepts it for L4 ports only.
  std::optional<ResumableSide> offer;
  std::string resume_header;
  if (ctx.shared.config->stream_resume && authority.ok() && appSocket(downstream_fd)) {
    offer.emplace();
    offer->role = HandedStream::Role::kClient;
    offer->token = hbone::ResumeToken::generate();
    offer->authority = authority->toString();
    resume_header = hbone::formatResume({.token = offer->token});
  }
  auto stream = openClientStream(ctx, *source, identity, *state, dest, resume_header);
  if (!stream.ok()) {
    LOG_WARN_EVERY_SECOND("outbound ", source->info.name, " -> ", dest.ip, ":", dest.port, ": ",
                          stream.status().ToString());
    ctx.stats.inc(ctx.stats.outbound_failed);
    closeWithReset(downstream_fd);
    return;
  }
  TunnelConnection* conn = stream->tunnel;
  auto* bridge = new StreamBridge(ctx, conn, stream->id, downstream_fd, /*fd_connecting=*/false,
                                  /*client=*/true);
  conn->attach(stream->id, bridge);
  if (offer) {
    bridge->offerResume(*std::move(offer));
  }
  bridge->setTelemetry(ctx.shared.telemetry->openConnection(outboundReport(
      *state,
      {.pod = *source, .principal = principalOf(state->trustDomain(), identity), .ip = source_ip},
      dest, /*mtls=*/true, nullptr)));
  bridge->start();
  conn->flush();
}

namespace {

// Backoff between resume attempts told to retry: 10 ms doubling to 500 ms (docs/upgrades.md).
std::chrono::milliseconds resumeBackoff(int attempt) {
  return std::chrono::milliseconds(std::min(500, 10 << std::min(attempt, 6)));
}

void resumeNow(WorkerContext& ctx, HandedStream stream,
               std::chrono::steady_clock::time_point deadline, int attempt);

void resumeFailed(WorkerContext& ctx, HandedStream& stream, const char* why) {
  ctx.shared.streams_in_resume.fetch_sub(1);
  LOG_INFO_EVERY_SECOND("resume of a stream to ", stream.authority, " failed: ", why,
                        "; resetting its app connection");
  ctx.stats.inc(ctx.stats.streams_resume_failed);
  closeWithReset(stream.app_fd);
  stream.app_fd = -1;
}

}  // namespace

namespace {

void resumeNow(WorkerContext& ctx, HandedStream stream,
               std::chrono::steady_clock::time_point deadline, int attempt) {
  auto pods = ctx.shared.pods->current();
  auto pod = pods->by_uid.find(stream.pod_uid);
  absl::StatusOr<tls::SpiffeId> local = tls::SpiffeId::parse(stream.local);
  absl::StatusOr<tls::SpiffeId> peer = tls::SpiffeId::parse(stream.peer);
  auto authority = hbone::Authority::parse(stream.authority);
  if (pod == pods->by_uid.end() || !local.ok() || !peer.ok() || !authority.ok()) {
    resumeFailed(ctx, stream, "its pod or identities are unknown here");
    return;
  }
  const PodIdentity identity{local->ns, local->service_account};
  PooledClient* conn = connectionFor(ctx, *pod->second, identity, *peer, stream.dial);
  if (conn == nullptr) {
    ctx.shared.streams_in_resume.fetch_sub(1);  // counted again by the next try
    resumeClientStream(ctx, std::move(stream), deadline, attempt + 1);
    return;
  }
  auto id = conn->client().openStream(
      *authority, stream.baggage,  // empty unless a record carried it
      hbone::formatResume({.token = stream.token, .delivered = stream.delivered}));
  if (!id.ok()) {
    conn->flush();
    ctx.shared.streams_in_resume.fetch_sub(1);  // counted again by the next try
    resumeClientStream(ctx, std::move(stream), deadline, attempt + 1);
    return;
  }
  const int fd = stream.app_fd;
  auto* bridge = new StreamBridge(ctx, conn, *id, fd, /*fd_connecting=*/false, /*client=*/true);
  conn->attach(*id, bridge);
  bridge->resumeOf(std::move(stream), deadline, attempt);
  bridge->start();
  conn->flush();
}

}  // namespace

void resumeClientStream(WorkerContext& ctx, HandedStream stream,
                        std::chrono::steady_clock::time_point deadline, int attempt) {
  // Counted from here until a resume answers, fails, or a successor takes the stream: a draining
  // agent does not leave while any is in between.
  ctx.shared.streams_in_resume.fetch_add(1);
  if (ctx.shared.handing_streams_over.load()) {
    // This agent is handing its streams to a successor: this one goes too, with the next batch.
    ctx.resume_waits.emplace(
        ctx.next_resume_wait++,
        WorkerContext::ResumeWait{
            .stream = std::move(stream), .deadline = deadline, .attempt = attempt});
    return;
  }
  if (attempt == 0) {
    resumeNow(ctx, std::move(stream), deadline, attempt);
    return;
  }
  // Asked again: after the backoff, unless the window has passed by then.
  const auto backoff = resumeBackoff(attempt - 1);
  if (std::chrono::steady_clock::now() + backoff >= deadline) {
    resumeFailed(ctx, stream, "no resume within --resume-window-ms");
    return;
  }
  const uint64_t key = ctx.next_resume_wait++;
  EventLoop::TimerId timer = ctx.loop.addTimer(backoff, [&ctx, key] {
    auto wait = ctx.resume_waits.extract(key);
    if (wait) {
      WorkerContext::ResumeWait& w = wait.mapped();
      resumeNow(ctx, std::move(w.stream), w.deadline, w.attempt);
    }
  });
  ctx.resume_waits.emplace(
      key,
      WorkerContext::ResumeWait{
          .stream = std::move(stream), .deadline = deadline, .attempt = attempt, .timer = timer});
}

// How long a stream whose end this side has sent stays with a draining agent before it is handed
// over (takeStreamsForSuccessor).
constexpr std::chrono::milliseconds kEndingStreamWait{500};

std::vector<HandedStream> takeStreamsForSuccessor(WorkerContext& ctx) {
  std::vector<HandedStream> out;
  // What has arrived already goes first: a stream the peer ended (its last bytes and its end
  // in this socket's buffer, the peer's side of it forgotten) ends here; handed over, its resume
  // would find nothing at the peer and the app would lose the end of it.
  std::set<TunnelConnection*> tunnels;
  for (StreamBridge* b : ctx.resumable_bridges) {
    tunnels.insert(b->tunnel());
  }
  for (TunnelConnection* t : tunnels) {
    t->readPending();
  }
  std::vector<StreamBridge*> bridges(ctx.resumable_bridges.begin(), ctx.resumable_bridges.end());
  for (StreamBridge* b : bridges) {
    // Detaching one may have ended another. A stream whose end this side sent a moment ago
    // waits for a later batch (one every 50 ms while this agent drains): the peer, having it,
    // may end the stream and forget it while its last bytes are still on the way here, and a
    // resume would then find nothing (410) and reset the app. Most such streams end here first.
    if (ctx.resumable_bridges.contains(b) && !b->endSentWithin(kEndingStreamWait)) {
      out.push_back(b->detach(hbone::kSuspendErrorCode));
    }
  }
  std::vector<StreamBridge*> resuming(ctx.resuming_bridges.begin(), ctx.resuming_bridges.end());
  for (StreamBridge* b : resuming) {
    if (ctx.resuming_bridges.contains(b)) {
      out.push_back(b->abandonResume());
      ctx.shared.streams_in_resume.fetch_sub(1);
    }
  }
  for (auto& [key, wait] : ctx.resume_waits) {
    if (wait.timer != 0) {
      ctx.loop.cancelTimer(wait.timer);
    }
    out.push_back(std::move(wait.stream));
    ctx.shared.streams_in_resume.fetch_sub(1);
  }
  ctx.resume_waits.clear();
  return out;
}

}  // namespace ferry::agent
