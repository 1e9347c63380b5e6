// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/proxy/outbound.h"

#include <sys/socket.h>
#include <unistd.h>

#include "agent/http/http_inbound.h"
#include "agent/http/http_outbound.h"
#include "agent/http/local_pipe.h"
#include "agent/identity/revocation.h"
#include "agent/proxy/hbone_client.h"
#include "agent/proxy/inbound.h"
#include "agent/proxy/listeners.h"
#include "agent/state/route_state.h"
#include "agent/telemetry/telemetry_peers.h"
#include "log/log.h"

namespace ferry::agent {

std::string principalOf(const std::string& trust_domain, const PodIdentity& id) {
  return trust_domain + "/ns/" + id.ns + "/sa/" + id.service_account;
}

namespace {

LogLimiter unknown_destination_log;
LogLimiter not_enrolled_log;

bool inRanges(const std::vector<net::Cidr>& ranges, const std::string& ip) {
  std::optional<net::IpAddress> address = net::IpAddress::parse(ip);
  if (!address) {
    return false;
  }
  for (const net::Cidr& range : ranges) {
    if (range.contains(*address)) {
      return true;
    }
  }
  return false;
}

void passthrough(WorkerContext& ctx, const LocalPod& source, const SocketAddress& to, int fd,
                 const ConnectionInfo& report) {
  ctx.stats.inc(ctx.stats.outbound_passthrough);
  auto up = ctx.shared.sockets->tcpSocketIn(source.netns, to.family());
  if (!up.ok()) {
    ctx.stats.inc(ctx.stats.outbound_failed);
    closeWithReset(fd);
    return;
  }
  if (!startConnect(*up, to).ok()) {
    ::close(*up);
    ctx.stats.inc(ctx.stats.outbound_failed);
    closeWithReset(fd);
    return;
  }
  std::vector<ConnectionTelemetry> reports;
  reports.push_back(ctx.shared.telemetry->openConnection(report));
  relayCounted(ctx, fd, *up, &ctx.stats.outbound_failed, std::move(reports));
}

}  // namespace

void acceptOutbound(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& pod, int fd) {
  ctx.stats.inc(ctx.stats.outbound_accepted);
  auto original = ctx.shared.capture->originalDestination(fd, pod->info);
  if (!original.ok()) {
    ctx.stats.inc(ctx.stats.outbound_no_original_dst);
    LOG_WARN_EVERY_SECOND("outbound from ", pod->info.name,
                          ": no original destination: ", original.status().ToString());
    closeWithReset(fd);
    return;
  }
  sockaddr_storage peer{};
  socklen_t peer_len = sizeof(peer);
  std::string source_ip;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0) {
    source_ip = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&peer), peer_len).ip();
  }
  auto state = ctx.shared.workloads->current();
  if (ctx.shared.routing != nullptr) {
    auto vip = state->serviceByVip(original->ip(), original->port());
    if (vip && ctx.shared.routing->hasRoutes(vip->service->key, original->port())) {
      // An HTTPRoute is attached: this hop parses HTTP and routes each request, even when the
      // parent Service itself has no endpoints (GAMMA "frontend" services).
      startHttpOutbound(ctx, pod, *original, source_ip, fd);
      return;
    }
  }
  Destination dest = state->resolve(original->ip(), original->port(), ctx.rng);
  if (dest.ip.empty()) {
    ctx.stats.inc(ctx.stats.outbound_no_endpoint);
    LOG_INFO_EVERY_SECOND("outbound from ", pod->info.name, " to ", original->str(),
                          ": service has no ready endpoint for this port");
    closeWithReset(fd);
    return;
  }
  forwardToDestination(ctx, pod, *state, dest, source_ip, fd, &*original);
}

SameNodeCall sameNodeCall(const WorkloadState& state, const LocalPodTable& pods,
                          const LocalPod& source, const Destination& dest, const SocketAddress& to,
                          const std::string& source_ip) {
  PodIdentity identity = identityOf(source, state.workloadByUid(source.info.uid));
  SameNodeCall call;
  call.principal = principalOf(state.trustDomain(), identity);
  call.in = LocalDelivery{.pod = pods.by_ip.at(dest.ip),
                          .workload = dest.workload,
                          .to = to,
                          .peer = source.info.name + " (same node)"};
  call.in.attrs.principal = call.principal;
  call.in.attrs.source_namespace = identity.ns;
  call.in.attrs.source_ip = source_ip;
  call.in.attrs.destination_ip = dest.ip;
  call.in.attrs.destination_port = dest.port;
  return call;
}

std::vector<ConnectionInfo> sameNodeReports(const WorkloadState& state, const LocalPod& source,
                                            const std::string& principal,
                                            const std::string& source_ip, const Destination& dest,
                                            const Decision& d) {
  const OutboundSource from{.pod = source, .principal = principal, .ip = source_ip};
  ConnectionInfo as_source = outboundReport(state, from, dest, true, &d);
  ConnectionInfo as_destination = as_source;
  as_destination.reporter = TelemetryReporter::kDestination;
  return {as_destination, as_source};
}

std::optional<bpf::DirectPair> directPairOf(const std::string& source_ip,
                                            const std::string& dest_ip, uint16_t port) {
  std::optional<net::IpAddress> from = net::IpAddress::parse(source_ip);
  std::optional<net::IpAddress> to = net::IpAddress::parse(dest_ip);
  if (!from || !to) {
    return std::nullopt;
  }
  return bpf::DirectPair{.source = from->addr16(), .destination = to->addr16(), .port = port};
}

Delivery deliveryOf(const WorkerContext& ctx, const WorkloadState& state, const LocalPodTable& pods,
                    const Destination& dest) {
  if (dest.workload == nullptr) {
    // A pod address or ClusterIP the state does not name: maybe a mesh pod or Service the
    // controller has not told this node about yet. Sending it in clear (kube-proxy would take a
    // VIP on to some pod) could bypass that pod's policy.
    const bool known_range =
        inRanges(ctx.shared.pod_ranges, dest.ip) || inRanges(ctx.shared.service_ranges, dest.ip);
    return known_range ? Delivery::kRefusedUnknown : Delivery::kPassthrough;
  }
  if (pods.findByIp(dest.ip) != nullptr) {
    return Delivery::kSameNode;
  }
  if (!dest.workload->mesh_enabled) {
    // Outside the mesh (the pod or its namespace opted out): plain TCP, as ztunnel does for a
    // workload whose protocol is TCP.
    return Delivery::kPassthrough;
  }
  if (dest.workload->node == state.node()) {
    return Delivery::kRefusedNotEnrolled;
  }
  return Delivery::kHbone;
}

void forwardToDestination(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& pod,
                          const WorkloadState& state_ref, const Destination& dest,
                          const std::string& source_ip, int fd, const SocketAddress* captured_to) {
  const WorkloadState* state = &state_ref;
  auto to = SocketAddress::parse(dest.ip, dest.port);
  if (!to.ok()) {
    ctx.stats.inc(ctx.stats.outbound_failed);
    closeWithReset(fd);
    return;
  }
  PodIdentity identity = identityOf(*pod, state->workloadByUid(pod->info.uid));
  std::string source_principal = principalOf(state->trustDomain(), identity);
  const OutboundSource source{.pod = *pod, .principal = source_principal, .ip = source_ip};
  auto pods = ctx.shared.pods->current();
  switch (deliveryOf(ctx, *state, *pods, dest)) {
    case Delivery::kRefusedUnknown:
      // Refused: the client's retry finds it once the state arrives.
      ctx.stats.inc(ctx.stats.outbound_unknown_destination);
      LOG_WARN_LIMITED(unknown_destination_log, "outbound from ", pod->info.ns, "/", pod->info.name,
                       " to ", to->str(), ": refused: no ",
                       inRanges(ctx.shared.pod_ranges, dest.ip) ? "pod" : "Service",
                       " with this address in state version ", state->snapshot().version);
      closeWithReset(fd);
      return;
    case Delivery::kPassthrough:
      passthrough(ctx, *pod, *to, fd,
                  outboundReport(*state, source, dest, /*mtls=*/false, nullptr));
      return;
    case Delivery::kSameNode: {
      // This agent is both ends, so it serves the destination's side as the pod's inbound
      // would, and reports as source and as destination, as two agents would. The identity was
      // checked locally: counted as mutual TLS.
      ctx.stats.inc(ctx.stats.outbound_same_node);
      SameNodeCall call = sameNodeCall(*state, *pods, *pod, dest, *to, source_ip);
      if (captured_to != nullptr && ctx.shared.direct != nullptr && captured_to->ip() == dest.ip) {
        // The app asked for this pod itself (no Service to balance): once admitted as L4, its
        // next connections to it can go direct (direct_paths.h).
        call.in.direct = directPairOf(source_ip, dest.ip, dest.port);
      }
      call.in.connect_failures = &ctx.stats.outbound_failed;
      deliverToLocalPod(
          ctx, *state, std::move(call.in),
          [&](const Decision& d) {
            return sameNodeReports(*state, *pod, call.principal, source_ip, dest, d);
          },
          LocalClient{.fd = fd});
      return;
    }
    case Delivery::kRefusedNotEnrolled:
      // Its CNI ADD has not reached this agent: nothing enforces its policy yet, so it gets
      // nothing.
      ctx.stats.inc(ctx.stats.outbound_not_enrolled);
      LOG_WARN_LIMITED(not_enrolled_log, "outbound from ", pod->info.ns, "/", pod->info.name,
                       " to ", to->str(), ": refused: mesh pod ", dest.workload->key.ns, "/",
                       dest.workload->key.name, " is not enrolled on this node");
      closeWithReset(fd);
      return;
    case Delivery::kHbone:
      ctx.stats.inc(ctx.stats.outbound_hbone);
      startHboneOutbound(ctx, pod, identity, dest, source_ip, fd);
      return;
  }
}

}  // namespace ferry::agent
