// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/http_inbound.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "agent/http/http_waiting.h"
#include "agent/http/local_pipe.h"
#include "agent/http/relay_end.h"
#include "agent/io/connection.h"
#include "agent/proxy/inbound.h"
#include "agent/telemetry/http_telemetry.h"
#include "http/http2_filter.h"
#include "log/log.h"

namespace ferry::agent {
namespace {

// Bytes waiting to be written to one side before the relay stops reading the other.
constexpr size_t kMaxPendingOut = 256 * 1024;
constexpr size_t kReadChunk = 16 * 1024;

class HttpInbound : public Deferred, public HeaderWaiter {
 public:
  HttpInbound(WorkerContext& ctx, std::shared_ptr<const LocalPod> pod, InboundPeer peer)
      : ctx_(ctx),
        pod_(std::move(pod)),
        peer_(std::move(peer)),
        reporter_(*ctx_.shared.workloads, *ctx_.shared.telemetry, pod_, peer_) {}

  ~HttpInbound() override {
    stopWaiting();
    cancel(connect_timer_);
    cancel(idle_timer_);
    cancel(repump_timer_);
  }

  // A new connection waits for its first request head from now on; false (counted) when the
  // agent is at --max-http-awaiting-headers and this worker has no older waiter to close.
  bool admit() { return startWaiting(); }

  // The client's end is its socket `downstream`; `upstream` is the connect to the app.
  void startSocket(int downstream, int upstream) {
    auto client = std::make_unique<SocketEnd>(ctx_.loop, downstream,
                                              [this](uint32_t events) { onSide(down_, events); });
    client->watch(/*read=*/false, /*write=*/false);
    down_.end = std::move(client);
    start(upstream);
  }

  // The client's end is the inbound side of an in-process pipe (local_pipe.h).
  void startPipe(std::unique_ptr<PipeEnd> client, int upstream) {
    client->bind([this] {
      if (!done_) {
        pump();
      }
    });
    down_.end = std::move(client);
    start(upstream);
  }

  // The client's end is HBONE stream `id` of `tunnel`, answered once the app is reached.
  void startStream(TunnelConnection& tunnel, hbone::StreamId id, std::function<void(int)> respond,
                   std::function<ConnectionTelemetry()> open_report, int upstream) {
    down_.end = std::make_unique<StreamEnd>(tunnel, id, std::move(respond), std::move(open_report),
                                            [this](StreamEnd::Event e) {
                                              if (done_) {
                                                return;
                                              }
                                              if (e == StreamEnd::Event::kFailed) {
                                                finish(true);
                                              } else {
                                                pump();
                                              }
                                            });
    start(upstream);
  }

  void evictForNewer() override {
    LOG_INFO_EVERY_SECOND("inbound HTTP to ", pod_->info.name,
                          ": closing the oldest connection "
                          "still without a request head (--max-http-awaiting-headers reached)");
    finish(true);
  }

 private:
  // One end; the filter output waiting to be written to it is queued on it.
  struct Side {
    std::unique_ptr<RelayEnd> end;
    bool read_eof = false;
    bool shut_pending = false;  // half-close once the queued output is written
    uint64_t read_bytes = 0;
    size_t pending() const { return end->pending(); }
  };

  void start(int upstream) {
    auto app = std::make_unique<SocketEnd>(ctx_.loop, upstream,
                                           [this](uint32_t events) { onSide(up_, events); });
    app_ = app.get();
    up_.end = std::move(app);
    ctx_.stats.inc(ctx_.stats.connections_active);
    ctx_.stats.inc(ctx_.stats.http_connections);
    http::Authorizer authorize =
        makeL7Authorizer(*ctx_.shared.workloads, ctx_.shared.rate_limits, ctx_.stats, pod_, peer_);
    authorize_ = [this, authorize = std::move(authorize)](const http::RequestView& view) {
      onRequestHead();
      return authorize(view);
    };
    connect_timer_ = ctx_.loop.addTimer(
        std::chrono::milliseconds(ctx_.shared.config->connect_timeout_ms), [this] {
          connect_timer_ = 0;
          appUnreachable();
        });
    app_->watch(/*read=*/false, /*write=*/true);  // the connect's completion
  }

  void appUnreachable() {
    ctx_.stats.inc(ctx_.stats.inbound_app_connect_failed);
    down_.end->onAppConnected(false);
    finish(true);
  }

  void onSide(Side& side, uint32_t events) {
    if (done_) {
      return;
    }
    if (connecting_ && &side == &up_) {
      if (socketError(app_->fd()) != 0 || (events & (EPOLLERR | EPOLLHUP))) {
        appUnreachable();
        return;
      }
      connecting_ = false;
      cancel(connect_timer_);
      down_.end->onAppConnected(true);
    }
    if (events & EPOLLERR) {
      finish(true);
      return;
    }
    pump();  // a hung-up side wanting nothing leaves the epoll set (Connection::onEvents)
  }

  bool roomToRead() const {
    return down_.pending() < kMaxPendingOut && up_.pending() < kMaxPendingOut && !closing_;
  }
  bool wantsDown() const {
    return !connecting_ && !down_.read_eof && roomToRead() &&
           (h1_ == nullptr || h1_->wantsDownstreamData());
  }
  // The app is not read before the client's first bytes chose the protocol: an h2c server sends
  // its SETTINGS at once, which must not be taken for an HTTP/1 response.
  bool wantsUp() const { return !connecting_ && protocolKnown() && !up_.read_eof && roomToRead(); }

  void pump() {
    for (int round = 0; round < 4 && !done_; ++round) {
      bool progress = false;
      if (wantsDown()) {
        progress |= readSide(down_);
      }
      if (wantsUp() && !done_) {
        progress |= readSide(up_);
      }
      if (done_ || !writeSide(down_) || !writeSide(up_)) {
        finish(true);
        return;
      }
      if (!progress) {
        break;
      }
    }
    if (done_) {
      return;
    }
    bool flushed = down_.pending() == 0 && up_.pending() == 0;
    bool filter_closed = (h1_ && h1_->closed()) || (h2_ && h2_->closed());
    if (flushed && (closing_ || filter_closed)) {
      finish(false);
      return;
    }
    if (flushed && down_.read_eof && up_.read_eof) {
      finish(false);
      return;
    }
    updateInterest(down_);
    updateInterest(up_);
    if (wantsDown() && down_.end->hasInput()) {
      // A stream announces data once: what this pass left (its rounds are bounded) is read on
      // the next turn of the loop.
      repump();
    }
    down_.end->afterPass();
  }

  void repump() {
    if (repump_timer_ == 0) {
      repump_timer_ = ctx_.loop.addTimer(std::chrono::milliseconds(0), [this] {
        repump_timer_ = 0;
        pump();
      });
    }
  }

  // Reads what the socket has (bounded) and feeds the filter; false when nothing was read.
  bool readSide(Side& side) {
    char buf[kReadChunk];
    Connection::ReadResult r = side.end->read(buf, sizeof(buf));
    if (r.status == Connection::ReadStatus::kAgain) {
      return false;
    }
    if (r.status == Connection::ReadStatus::kError) {
      finish(true);
      return false;
    }
    http::FilterOutput out;
    if (r.status == Connection::ReadStatus::kEof) {
      side.read_eof = true;
      if (&side == &down_) {
        if (!protocolKnown()) {
          choose(false, out);
        }
        h1_ ? h1_->onDownstreamEof(out) : h2_->onDownstreamEof(out);
      } else {
        if (!protocolKnown()) {
          choose(false, out);
        }
        h1_ ? h1_->onUpstreamEof(out) : h2_->onUpstreamEof(out);
      }
      apply(out);
      return true;
    }
    side.read_bytes += r.bytes;
    std::string_view data(buf, r.bytes);
    if (&side == &down_ && !onClientBytes()) {
      finish(true);
      return false;
    }
    if (&side == &down_) {
      if (!protocolKnown()) {
        sniff_.append(data);
        const http::PrefaceSniff sniffed = http::sniffH2Preface(sniff_);
        if (sniffed == http::PrefaceSniff::kNeedMore) {
          return true;  // wait for the whole preface
        }
        if (!choose(sniffed == http::PrefaceSniff::kHttp2, out)) {
          apply(out);
          return true;
        }
        std::string first = std::move(sniff_);
        h1_ ? h1_->onDownstreamData(first, out) : h2_->onDownstreamData(first, out);
      } else {
        h1_ ? h1_->onDownstreamData(data, out) : h2_->onDownstreamData(data, out);
      }
    } else {
      h1_ ? h1_->onUpstreamData(data, out) : h2_->onUpstreamData(data, out);
    }
    apply(out);
    return true;
  }

  bool protocolKnown() const { return h1_ != nullptr || h2_ != nullptr; }

  bool choose(bool h2, http::FilterOutput& out) {
    auto sink = [this](const http::RequestRecord& r) { onRecord(r); };
    if (h2) {
      auto f = http::Http2Filter::create({}, authorize_,
                                         traceHeaderHook(ctx_.shared.telemetry->sampler()));
      if (!f.ok()) {
        LOG_WARN_EVERY_SECOND("inbound HTTP/2 to ", pod_->info.name, ": ", f.status().ToString());
        closing_ = true;
        return false;
      }
      h2_ = *std::move(f);
      h2_->setRecordSink(sink);
      h2_->start(out);
    } else {
      h1_ = std::make_unique<http::Http1Filter>(http::Http1FilterConfig{}, authorize_,
                                                traceHeaderHook(ctx_.shared.telemetry->sampler()));
      h1_->setRecordSink(sink);
    }
    return true;
  }

  void apply(http::FilterOutput& out) {
    up_.end->queue(out.to_upstream);
    down_.end->queue(out.to_downstream);
    up_.shut_pending |= out.shutdown_upstream;
    down_.shut_pending |= out.shutdown_downstream;
    closing_ |= out.close;
  }

  bool writeSide(Side& side) {
    if (!side.end->flush()) {
      return false;
    }
    if (side.pending() == 0 && side.shut_pending) {
      side.end->shutdownWrite();
    }
    return true;
  }

  void updateInterest(Side& side) {
    side.end->want(/*read=*/&side == &down_ ? wantsDown() : wantsUp(),
                   /*write=*/&side == &up_ && connecting_);
  }

  void onRecord(const http::RequestRecord& r) {
    reporter_.report(r);
    if (r.authorized && in_flight_ > 0 && --in_flight_ == 0) {
      // A pipelined next head that arrived in part while this one was served is timed now.
      if (h1_ != nullptr && h1_->partialRequestHead()) {
        if (!startWaiting()) {
          closing_ = true;  // refused at the cap: close once what is pending is written
        }
        return;
      }
      startIdle();
    }
  }

  // --- Waiting for a request head (http_waiting.h) and keep-alive idleness. ---

  bool startWaiting() {
    if (!ctx_.header_waits->enter(*this, ctx_.shared.config->max_http_awaiting_headers)) {
      return false;
    }
    cancel(idle_timer_);
    header_timer_ = ctx_.loop.addTimer(
        std::chrono::milliseconds(ctx_.shared.config->http_header_timeout_ms), [this] {
          header_timer_ = 0;
          ctx_.stats.inc(ctx_.stats.http_header_timeouts);
          LOG_INFO_EVERY_SECOND("inbound HTTP ", peer_.source_ip, " -> ", pod_->info.name,
                                ": no complete request head within ",
                                ctx_.shared.config->http_header_timeout_ms, " ms; closing");
          finish(true);
        });
    return true;
  }

  void stopWaiting() {
    ctx_.header_waits->leave(*this);
    cancel(header_timer_);
  }

  // From the authorizer: a request head is complete.
  void onRequestHead() {
    stopWaiting();
    cancel(idle_timer_);
    ++in_flight_;
  }

  // Client bytes on a keep-alive HTTP/1 connection with no request in flight start the next
  // request: its head is timed and counted like a new connection's. False: refused, close.
  bool onClientBytes() {
    if (waiting() || in_flight_ > 0 || h1_ == nullptr || h1_->tunneling()) {
      return true;
    }
    return startWaiting();
  }

  void startIdle() {
    if (waiting() || done_ || (h1_ != nullptr && h1_->tunneling())) {
      return;
    }
    cancel(idle_timer_);
    idle_timer_ = ctx_.loop.addTimer(
        std::chrono::milliseconds(ctx_.shared.config->http_idle_timeout_ms), [this] {
          idle_timer_ = 0;
          if (h1_ != nullptr && h1_->tunneling()) {
            return;  // became a tunnel (Upgrade, CONNECT) after its last record: not idle
          }
          ctx_.stats.inc(ctx_.stats.http_idle_timeouts);
          finish(false);
        });
  }

  void cancel(EventLoop::TimerId& timer) {
    if (timer != 0) {
      ctx_.loop.cancelTimer(timer);
      timer = 0;
    }
  }

  void finish(bool reset) {
    if (done_) {
      return;
    }
    done_ = true;
    stopWaiting();
    cancel(connect_timer_);
    cancel(idle_timer_);
    cancel(repump_timer_);
    down_.end->close(reset);
    up_.end->close(reset);
    ctx_.stats.inc(ctx_.stats.connections_active, -1);
    ctx_.stats.inc(ctx_.stats.bytes_sent_upstream, static_cast<int64_t>(down_.read_bytes));
    ctx_.stats.inc(ctx_.stats.bytes_sent_downstream, static_cast<int64_t>(up_.read_bytes));
    ctx_.loop.deleteLater(std::unique_ptr<Deferred>(this));
  }

  WorkerContext& ctx_;
  std::shared_ptr<const LocalPod> pod_;
  InboundPeer peer_;
  HttpInboundReporter reporter_;
  http::Authorizer authorize_;
  Side down_;
  Side up_;
  SocketEnd* app_ = nullptr;  // up_'s end
  std::string sniff_;
  std::unique_ptr<http::Http1Filter> h1_;
  std::unique_ptr<http::Http2Filter> h2_;
  bool connecting_ = true;
  bool closing_ = false;
  bool done_ = false;
  EventLoop::TimerId connect_timer_ = 0;
  EventLoop::TimerId header_timer_ = 0;  // while waiting for a request head
  EventLoop::TimerId idle_timer_ = 0;    // while no request is in flight (keep-alive)
  EventLoop::TimerId repump_timer_ = 0;  // input a stream holds, read on the next turn
  int in_flight_ = 0;                    // request heads authorized and not yet answered
};

}  // namespace

void startHttpInbound(WorkerContext& ctx, int downstream, std::shared_ptr<const LocalPod> pod,
                      const SocketAddress& app, InboundPeer peer) {
  auto relay = std::make_unique<HttpInbound>(ctx, pod, std::move(peer));
  if (!relay->admit()) {
    closeWithReset(downstream);
    return;
  }
  auto fd = connectToApp(*ctx.shared.sockets, *pod, app);
  if (!fd.ok()) {
    ctx.stats.inc(ctx.stats.inbound_app_connect_failed);
    closeWithReset(downstream);
    return;
  }
  relay.release()->startSocket(downstream, *fd);  // deletes itself once finished
}

void startHttpInboundPipe(WorkerContext& ctx, std::unique_ptr<PipeEnd> client,
                          std::shared_ptr<const LocalPod> pod, const SocketAddress& app,
                          InboundPeer peer) {
  auto relay = std::make_unique<HttpInbound>(ctx, pod, std::move(peer));
  if (!relay->admit()) {
    client->close(/*reset=*/true);
    return;
  }
  auto fd = connectToApp(*ctx.shared.sockets, *pod, app);
  if (!fd.ok()) {
    ctx.stats.inc(ctx.stats.inbound_app_connect_failed);
    client->close(/*reset=*/true);
    return;
  }
  relay.release()->startPipe(std::move(client), *fd);  // deletes itself once finished
}

absl::Status startHttpInboundStream(WorkerContext& ctx, TunnelConnection& tunnel,
                                    hbone::StreamId id, std::shared_ptr<const LocalPod> pod,
                                    const SocketAddress& app, InboundPeer peer,
                                    std::function<void(int)> respond,
                                    std::function<ConnectionTelemetry()> open_report) {
  auto relay = std::make_unique<HttpInbound>(ctx, pod, std::move(peer));
  if (!relay->admit()) {
    return absl::ResourceExhaustedError("too many HTTP connections waiting for request headers");
  }
  auto fd = connectToApp(*ctx.shared.sockets, *pod, app);
  if (!fd.ok()) {
    return fd.status();
  }
  relay.release()->startStream(tunnel, id, std::move(respond), std::move(open_report), *fd);
  return absl::OkStatus();
}

}  // namespace ferry::agent
