// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// One upstream connection of the routed HTTP path (HTTP/1 tries and mirrors, HTTP/2 sessions),
// as its user reads and writes it, whoever reaches the backend:
//  - StreamLink: to a mesh pod on another node, the HBONE stream itself, opened with the source
//    pod's identity on a pooled mTLS connection (hbone_client.h, openClientStream) and read and
//    written in place, as the inbound relay does with its stream (relay_end.h). No socketpair,
//    no second relay: the routed hop and the L4 path share the pool, the CONNECT, the baggage
//    and the TCP report, not a loopback copy.
//  - PipeLink (local_pipe.h): to an HTTP port of a pod on this node, an in-process pipe whose
//    other side is the client end of the destination's inbound HTTP relay, started by
//    deliverToLocalPod after the destination's policy (L7 included, per request there).
//  - SocketLink: one end of a socketpair whose other end goes through forwardToDestination
//    (outbound.h): a TCP port of a pod on this node, passthrough, and WebSocket routes (after
//    the 101 the tunnel is a relay of two sockets).
//
// A link reports to whoever holds it now (bind(): the pool while idle, a try while in use). A
// stream reports like a level-triggered socket: while its holder wants to read and bytes (or the
// end) wait, it hears of them again after each batch (EventLoop::afterBatch), so a holder that
// reads one chunk per event never stalls. Links are Deferred: a holder that is done with one
// inside its own callback closes it and hands it to deleteLater.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "agent/http/relay_end.h"
#include "agent/io/connection.h"
#include "agent/io/event_loop.h"
#include "agent/pods/local_pods.h"
#include "agent/proxy/hbone_tunnel.h"
#include "agent/state/workload_state.h"
#include "agent/telemetry/telemetry.h"

namespace ferry::agent {

struct WorkerContext;

class UpstreamLink : public RelayEnd, public Deferred {
 public:
  // Who hears of the link from now on (nullptr: nobody).
  void bind(std::function<void()> on_event) { on_event_ = std::move(on_event); }
  // Starts reporting (a new socket joins the loop), reading; false when it cannot.
  virtual bool start() = 0;
  // An event while idle in the pool: true when the link can no longer carry a request (it
  // closed, failed, or the backend spoke out of turn).
  virtual bool brokenWhileIdle() const = 0;
  // A socket's descriptor, handed on (the link is done); -1 for a stream.
  virtual int takeSocket() { return -1; }
  // As queue(), for bytes whose memory can go once sent.
  virtual void queueOwned(std::string bytes) { queue(bytes); }

 protected:
  void notify() {
    if (on_event_) {
      std::function<void()> fn = on_event_;  // the holder may rebind from inside
      fn();
    }
  }

 private:
  std::function<void()> on_event_;
};

class SocketLink final : public SocketSide<UpstreamLink> {
 public:
  SocketLink(EventLoop& loop, int fd) : SocketSide(loop, fd, [this](uint32_t) { notify(); }) {}

  bool start() override {
    if (started_) {
      conn_.want(/*read=*/true, /*write=*/false);  // a pooled one: watched since it opened
      return true;
    }
    started_ = true;
    return conn_.watch(/*read=*/true).ok();
  }
  bool brokenWhileIdle() const override { return true; }  // epoll only reports input or a hangup
  int takeSocket() override { return conn_.release(); }
  void queueOwned(std::string bytes) override { conn_.queueOwned(std::move(bytes)); }
  void want(bool read, bool write) override {
    if (started_) {
      conn_.want(read, write);
    } else {
      started_ = conn_.watch(read, write).ok();  // a new one put straight in the pool
    }
  }

 private:
  bool started_ = false;  // watched by the loop
};

class StreamLink final : public UpstreamLink, public TunnelStream {
 public:
  // Attaches to stream `id` of `tunnel` (opened, not yet answered); `telemetry`: the L4 report
  // of the connection it stands for, closed with the stream's byte counts.
  StreamLink(WorkerContext& ctx, TunnelConnection& tunnel, hbone::StreamId id,
             ConnectionTelemetry telemetry);
  ~StreamLink() override;

  bool start() override;
  bool brokenWhileIdle() const override;

  // RelayEnd
  Connection::ReadResult read(char* buf, size_t room) override;
  void queue(std::string_view bytes) override { io_.queue(bytes); }
  bool flush() override;
  size_t pending() const override { return io_.pending(); }
  void shutdownWrite() override;
  void close(bool reset) override;
  void want(bool read, bool write) override;
  bool hasInput() const override { return io_.hasInput(); }

  // TunnelStream
  void onResponse(int status) override;
  void onTunnelReadable() override { notify(); }
  void onTunnelWritable() override { notify(); }
  void onTunnelClosed(uint32_t error_code) override;
  void onTunnelFailed() override;
  void abort() override;

 private:
  // Sends what the stream produced, after this batch.
  void flushTunnel();
  // While the holder wants to read and something waits (or `always`): tell it again after this
  // batch.
  void reportAgainLater(bool always);

  WorkerContext& ctx_;
  StreamIo io_;
  ConnectionTelemetry telemetry_;
  bool want_read_ = true;
  bool report_queued_ = false;
  bool report_always_ = false;
  bool end_read_ = false;  // the holder read the end (or the failure)
  bool closed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// A new link from `source` to `destination` for the routed path, unless `socket`: a StreamLink
// when the answer of deliveryOf() is HBONE, a PipeLink when it is this node and the port is an
// HTTP port (isHttpPort, as the destination's inbound decides), else a SocketLink whose other
// end goes through forwardToDestination. Errors are those of opening the HBONE stream (no
// certificate, no connection): nothing reached the backend.
absl::StatusOr<std::unique_ptr<UpstreamLink>> openUpstreamLink(
    WorkerContext& ctx, const std::shared_ptr<const LocalPod>& source, const WorkloadState& state,
    const Destination& destination, const std::string& source_ip, bool socket);

}  // namespace ferry::agent
