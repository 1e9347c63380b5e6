// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Inbound plaintext (15006): connections sk_lookup steered to the agent because they arrived
// for a pod's address without HBONE. PERMISSIVE serves them as an unauthenticated source,
// subject to policy; STRICT refuses them.
#include <sys/socket.h>
#include <unistd.h>

#include "agent/http/http_inbound.h"
#include "agent/http/local_pipe.h"
#include "agent/identity/revocation.h"
#include "agent/proxy/direct_paths.h"
#include "agent/proxy/inbound.h"
#include "agent/proxy/listeners.h"
#include "agent/proxy/outbound.h"
#include "agent/proxy/tcp_relay.h"
#include "agent/state/rate_limits.h"
#include "agent/telemetry/telemetry_peers.h"
#include "log/log.h"

namespace ferry::agent {

absl::StatusOr<int> connectToApp(const PodSockets& sockets, const LocalPod& pod,
                                 const SocketAddress& app) {
  // From inside the pod's namespace to its own address: the packet stays on `lo`, which
  // sk_lookup leaves alone, so it reaches the app and not our 15006 again.
  auto fd = sockets.tcpSocketIn(pod.netns, app.family());
  if (!fd.ok()) {
    return fd.status();
  }
  if (auto s = startConnect(*fd, app); !s.ok()) {
    ::close(*fd);
    return s;
  }
  return *fd;
}

const model::Workload& workloadOf(const WorkloadState& state, const LocalPod& pod,
                                  model::Workload& fallback) {
  if (const model::Workload* w = state.workloadByUid(pod.info.uid)) {
    return *w;
  }
  fallback.uid = pod.info.uid;
  fallback.key = {pod.info.ns, pod.info.name};
  fallback.service_account = pod.info.service_account;
  fallback.ips = pod.info.ips;
  return fallback;
}

Revocations& revocationsOf(WorkerContext& ctx) {
  if (!ctx.revocations) {
    ctx.revocations = std::make_unique<Revocations>(ctx.loop, *ctx.shared.workloads, ctx.stats);
  }
  return *ctx.revocations;
}

TcpRelay* relayCounted(WorkerContext& ctx, int downstream, int upstream,
                       std::atomic<int64_t>* connect_failures,
                       std::vector<ConnectionTelemetry> telemetry, std::function<void()> on_done) {
  ctx.stats.inc(ctx.stats.connections_active);
  Stats* stats = &ctx.stats;
  // std::function needs a copyable callable: the move-only reports ride in a shared_ptr.
  auto reports = std::make_shared<std::vector<ConnectionTelemetry>>(std::move(telemetry));
  return TcpRelay::start(
      ctx.loop, downstream, upstream, /*b_connecting=*/true,
      {.max_buffer = ctx.shared.config->max_buffer_bytes,
       .connect_timeout_ms = ctx.shared.config->connect_timeout_ms},
      [stats, connect_failures, reports, on_done = std::move(on_done)](const RelayResult& r) {
        stats->inc(stats->connections_active, -1);
        stats->inc(stats->bytes_sent_upstream, static_cast<int64_t>(r.bytes_a_to_b));
        stats->inc(stats->bytes_sent_downstream, static_cast<int64_t>(r.bytes_b_to_a));
        if (r.connect_failed && connect_failures != nullptr) {
          stats->inc(*connect_failures);
        }
        for (ConnectionTelemetry& t : *reports) {
          t.close({.bytes_from_source = r.bytes_a_to_b,
                   .bytes_to_source = r.bytes_b_to_a,
                   .connect_failed = r.connect_failed,
                   .reset = r.reset});
        }
        if (on_done) {
          on_done();
        }
      });
}

bool admitConnectionRate(RateLimits* limits, Stats& stats, const LocalPod& pod, uint16_t port,
                         const std::string& principal, const std::string& peer) {
  if (limits == nullptr) {
    return true;
  }
  RateLimitVerdict v = limits->check(pod.info.uid, port, principal, false);
  if (v.allowed) {
    return true;
  }
  stats.inc(stats.tcp_connections_rate_limited);
  LOG_INFO_EVERY_SECOND("inbound ", peer, " -> ", pod.info.name, ":", port,
                        ": connection refused: ", v.reason);
  return false;
}

namespace {

void serveRacedDirect(WorkerContext& ctx, const LocalPodTable& pods, const LocalPod& source,
                      const std::shared_ptr<const LocalPod>& pod, const SocketAddress& src,
                      const SocketAddress& dst, int fd) {
  auto state = ctx.shared.workloads->current();
  model::Workload fallback;
  const Destination dest{
      .ip = dst.ip(), .port = dst.port(), .workload = &workloadOf(*state, *pod, fallback)};
  SameNodeCall call = sameNodeCall(*state, pods, source, dest, dst, src.ip());
  call.in.connect_failures = &ctx.stats.inbound_app_connect_failed;
  deliverToLocalPod(
      ctx, *state, std::move(call.in),
      [&](const Decision& d) {
        return sameNodeReports(*state, source, call.principal, src.ip(), dest, d);
      },
      LocalClient{.fd = fd});
}

}  // namespace

void acceptInboundPlain(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& pod, int fd) {
  ctx.stats.inc(ctx.stats.inbound_plain_accepted);
  sockaddr_storage local{}, peer{};
  socklen_t local_len = sizeof(local), peer_len = sizeof(peer);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
      ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
    closeWithReset(fd);
    return;
  }
  SocketAddress dst = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&local), local_len);
  SocketAddress src = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&peer), peer_len);
  if (ctx.shared.direct != nullptr) {
    auto pods = ctx.shared.pods->current();
    const LocalPod* source = pods->findByIp(src.ip());
    if (source != nullptr && ctx.shared.direct->isDirectConnection(src, dst)) {
      // A direct connect (direct_paths.h) whose pair was removed between its connect() and its
      // SYN. Its client is certain (the kernel filed that pod's socket), so it is served as the
      // same-node path serves it: with that pod's identity, under the destination's policy.
      ctx.stats.inc(ctx.stats.inbound_direct_raced);
      serveRacedDirect(ctx, *pods, *source, pod, src, dst, fd);
      return;
    }
  }
  auto state = ctx.shared.workloads->current();
  model::Workload fallback;
  const model::Workload* workload = &workloadOf(*state, *pod, fallback);
  if (mtlsModeFor(state->snapshot(), *workload, dst.port()) == model::MtlsMode::kStrict) {
    ctx.stats.inc(ctx.stats.inbound_plain_refused_strict);
    LOG_INFO_EVERY_SECOND("inbound ", src.str(), " -> ", pod->info.name, " ", dst.str(),
                          ": plaintext refused (STRICT mTLS)");
    closeWithReset(fd);
    return;
  }
  LocalDelivery in{.pod = pod, .workload = workload, .to = dst, .peer = src.str()};
  in.attrs.source_ip = src.ip();
  in.attrs.destination_ip = dst.ip();
  in.attrs.destination_port = dst.port();
  in.connect_failures = &ctx.stats.inbound_app_connect_failed;
  deliverToLocalPod(
      ctx, *state, std::move(in),
      [&](const Decision& d) {
        return std::vector<ConnectionInfo>{inboundReport(
            *state, *pod, {.principal = "", .mtls = false, .ip = src.ip(), .address = src.str()},
            dst, d)};
      },
      LocalClient{.fd = fd});
}

Decision authorizeDelivery(const WorkloadState& state, LocalDelivery& in, Stats* stats) {
  in.attrs.http = isHttpPort(state.snapshot(), *in.workload, in.to.port());
  return state.policies().authorize(*in.workload, in.attrs, stats);
}

void deliverToLocalPod(WorkerContext& ctx, const WorkloadState& state, LocalDelivery in,
                       absl::FunctionRef<std::vector<ConnectionInfo>(const Decision&)> reports,
                       LocalClient client) {
  Decision d = authorizeDelivery(state, in, &ctx.stats);
  std::vector<ConnectionInfo> infos = reports(d);
  auto refuse = [&client] {
    if (client.pipe != nullptr) {
      client.pipe->close(/*reset=*/true);
    } else {
      closeWithReset(client.fd);
    }
  };
  if (!d.allowed) {
    ctx.shared.telemetry->connectionDenied(infos.front());
    ctx.stats.inc(ctx.stats.policy_denied);
    LOG_INFO_EVERY_SECOND("inbound ", in.peer, " -> ", in.pod->info.name, " ", in.to.str(),
                          ": denied (", in.attrs.principal.empty() ? "plaintext" : "mTLS", ", ",
                          d.reason, ")");
    refuse();
    return;
  }
  const std::string principal = in.attrs.principal.empty() ? "" : "spiffe://" + in.attrs.principal;
  const InboundPeer peer{principal, in.attrs.source_ip, in.to.ip(), in.to.port()};
  if (client.pipe != nullptr) {
    if (!in.attrs.http) {
      refuse();  // the caller asked isHttpPort() first: a pipe never reaches a TCP relay
      return;
    }
    startHttpInboundPipe(ctx, std::move(client.pipe), in.pod, in.to, peer);
    return;
  }
  const int fd = client.fd;
  if (in.attrs.http) {
    startHttpInbound(ctx, fd, in.pod, in.to, peer);
    return;
  }
  if (!admitConnectionRate(ctx.shared.rate_limits, ctx.stats, *in.pod, in.to.port(), principal,
                           in.peer)) {
    closeWithReset(fd);
    return;
  }
  auto app = connectToApp(*ctx.shared.sockets, *in.pod, in.to);
  if (!app.ok()) {
    ctx.stats.inc(*in.connect_failures);
    closeWithReset(fd);
    return;
  }
  std::vector<ConnectionTelemetry> opened;
  for (const ConnectionInfo& info : infos) {
    opened.push_back(ctx.shared.telemetry->openConnection(info));
  }
  if (in.direct && ctx.shared.direct != nullptr) {
    ctx.shared.direct->offer(*in.direct);
  }
  // Closed if a later policy no longer allows what was admitted here.
  Revocations& revocations = revocationsOf(ctx);
  auto id = std::make_shared<Revocations::Id>(0);
  TcpRelay* relay = relayCounted(ctx, fd, *app, in.connect_failures, std::move(opened),
                                 [id, &revocations] { revocations.remove(*id); });
  // The entry is removed when the relay finishes, so a relay reached here is still open.
  *id = revocations.add(*in.workload, std::move(in.attrs), [relay] {
    relay->abort();
    return true;
  });
}

}  // namespace ferry::agent
