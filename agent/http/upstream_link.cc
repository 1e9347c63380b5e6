// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/upstream_link.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "agent/http/l7_authorizer.h"
#include "agent/http/local_pipe.h"
#include "agent/proxy/hbone_client.h"
#include "agent/proxy/inbound.h"
#include "agent/proxy/outbound.h"
#include "agent/telemetry/telemetry_peers.h"
#include "agent/worker_context.h"
#include "log/log.h"

namespace ferry::agent {

StreamLink::StreamLink(WorkerContext& ctx, TunnelConnection& tunnel, hbone::StreamId id,
                       ConnectionTelemetry telemetry)
    : ctx_(ctx), io_(tunnel, id, this), telemetry_(std::move(telemetry)) {
  ctx_.stats.inc(ctx_.stats.connections_active);
}

StreamLink::~StreamLink() {
  *alive_ = false;
  close(/*reset=*/true);  // no-op once closed
}

void StreamLink::flushTunnel() {
  if (io_.tunnel() != nullptr) {
    io_.tunnel()->flushSoon();
  }
}

bool StreamLink::start() {
  // What the holder queued goes on the stream now (behind the CONNECT of a new one); a failure
  // is reported as a socket's would be, by an event.
  if (!flush()) {
    reportAgainLater(/*always=*/true);
  }
  want_read_ = true;
  return true;
}

bool StreamLink::brokenWhileIdle() const {
  return io_.failed() || io_.tunnel() == nullptr || io_.hasInput();
}

Connection::ReadResult StreamLink::read(char* buf, size_t room) {
  Connection::ReadResult r = io_.read(buf, room);
  switch (r.status) {
    case Connection::ReadStatus::kData:
      flushTunnel();                       // the window credit the read gave back
      reportAgainLater(/*always=*/false);  // more may wait behind these bytes
      break;
    case Connection::ReadStatus::kAgain:
      break;
    case Connection::ReadStatus::kEof:
    case Connection::ReadStatus::kError:
      end_read_ = true;
      break;
  }
  return r;
}

bool StreamLink::flush() {
  const bool ok = io_.flush();
  flushTunnel();
  return ok;
}

void StreamLink::shutdownWrite() {
  io_.shutdownWrite();
  flushTunnel();
}

void StreamLink::close(bool reset) {
  if (closed_) {
    return;
  }
  closed_ = true;
  bind(nullptr);
  reset |= io_.failed();
  if (TunnelConnection* tunnel = io_.close(reset)) {
    tunnel->flushSoon();
  }
  ctx_.stats.inc(ctx_.stats.connections_active, -1);
  ctx_.stats.inc(ctx_.stats.bytes_sent_upstream, static_cast<int64_t>(io_.bytesOut()));
  ctx_.stats.inc(ctx_.stats.bytes_sent_downstream, static_cast<int64_t>(io_.bytesIn()));
  if (telemetry_.open()) {
    telemetry_.close(
        {.bytes_from_source = io_.bytesOut(), .bytes_to_source = io_.bytesIn(), .reset = reset});
  }
}

void StreamLink::want(bool read, bool /*write*/) {
  want_read_ = read;
  reportAgainLater(/*always=*/false);
}

void StreamLink::reportAgainLater(bool always) {
  report_always_ |= always;
  if (report_queued_ || closed_) {
    return;
  }
  report_queued_ = true;
  ctx_.loop.afterBatch([this, alive = alive_] {
    if (!*alive) {
      return;
    }
    report_queued_ = false;
    const bool always = std::exchange(report_always_, false);
    const bool end_unread = io_.tunnel() == nullptr && !end_read_;
    if (!closed_ && (always || (want_read_ && (io_.hasInput() || end_unread)))) {
      notify();
    }
  });
}

void StreamLink::onResponse(int status) {
  if (status == 200) {
    return;
  }
  // Refused by the destination's agent (policy 403, bad authority 400, app down 503): the
  // holder sees a reset before any byte, as from a refused connect.
  ctx_.stats.inc(status == 403 ? ctx_.stats.policy_denied : ctx_.stats.outbound_failed);
  LOG_INFO_EVERY_SECOND("routed upstream stream refused by peer with status ", status);
  io_.detach();
  io_.lost(/*clean=*/false);
  notify();
}

void StreamLink::onTunnelClosed(uint32_t error_code) {
  io_.lost(/*clean=*/error_code == 0);
  notify();
}

void StreamLink::onTunnelFailed() {
  io_.lost(/*clean=*/false);
  notify();
}

void StreamLink::abort() {
  io_.detach();
  io_.lost(/*clean=*/false);
  notify();
}

absl::StatusOr<std::unique_ptr<UpstreamLink>> openUpstreamLink(
    WorkerContext& ctx, const std::shared_ptr<const LocalPod>& source, const WorkloadState& state,
    const Destination& destination, const std::string& source_ip, bool socket) {
  auto pods = ctx.shared.pods->current();
  const Delivery delivery = socket ? Delivery::kPassthrough  // (a socketpair, whatever it is)
                                   : deliveryOf(ctx, state, *pods, destination);
  if (delivery == Delivery::kHbone) {
    ctx.stats.inc(ctx.stats.outbound_hbone);
    ctx.stats.inc(ctx.stats.routed_upstream_streams);
    const PodIdentity identity = identityOf(*source, state.workloadByUid(source->info.uid));
    auto stream = openClientStream(ctx, *source, identity, state, destination, "");
    if (!stream.ok()) {
      ctx.stats.inc(ctx.stats.outbound_failed);
      return stream.status();
    }
    const std::string principal = principalOf(state.trustDomain(), identity);
    ConnectionTelemetry report = ctx.shared.telemetry->openConnection(outboundReport(
        state, {.pod = *source, .principal = principal, .ip = source_ip}, destination,
        /*mtls=*/true, nullptr));
    return std::make_unique<StreamLink>(ctx, *stream->tunnel, stream->id, std::move(report));
  }
  auto to = SocketAddress::parse(destination.ip, destination.port);
  if (delivery == Delivery::kSameNode && to.ok() &&
      isHttpPort(state.snapshot(), *destination.workload, destination.port)) {
    // The destination's inbound HTTP relay, policy first, as for any same-node connection; its
    // client end is the other side of the pipe.
    ctx.stats.inc(ctx.stats.outbound_same_node);
    ctx.stats.inc(ctx.stats.routed_upstream_pipes);
    PipePair pipe = makePipe(ctx.loop);
    SameNodeCall call = sameNodeCall(state, *pods, *source, destination, *to, source_ip);
    call.in.connect_failures = &ctx.stats.outbound_failed;
    deliverToLocalPod(
        ctx, state, std::move(call.in),
        [&](const Decision& d) {
          return sameNodeReports(state, *source, call.principal, source_ip, destination, d);
        },
        LocalClient{.pipe = std::move(pipe.end)});
    return std::move(pipe.link);
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
    return absl::InternalError(std::string("socketpair: ") + std::strerror(errno));
  }
  ctx.stats.inc(ctx.stats.routed_upstream_sockets);
  forwardToDestination(ctx, source, state, destination, source_ip, pair[1]);
  return std::make_unique<SocketLink>(ctx.loop, pair[0]);
}

}  // namespace ferry::agent
