// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The routed outbound's I/O (issue 20 point 2): the client connection (HTTP/1.1 requests parsed
// one at a time, answers written back) and each try's upstream connection, both on
// agent/io/connection.h. What to do with a request is decided by decideRoute()
// (agent/http/route_decision.h); tries, timeouts and retries are UpstreamAttempts'
// (agent/http/upstream_attempts.h), which calls back here through AttemptIo.
#include "agent/http/http_outbound.h"

#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "agent/http/h2_outbound.h"
#include "agent/http/http_messages.h"
#include "agent/http/http_mirror.h"
#include "agent/http/loop_clock.h"
#include "agent/http/route_decision.h"
#include "agent/http/routed_exchange.h"
#include "agent/http/upstream_attempts.h"
#include "agent/http/upstream_pool.h"
#include "agent/http/websocket_tunnel.h"
#include "agent/io/connection.h"
#include "agent/state/route_state.h"
#include "agent/telemetry/telemetry.h"
#include "http/http1_parser.h"
#include "http/http2_filter.h"
#include "log/log.h"

namespace ferry::agent {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
// Bytes waiting for one side before the other side is no longer read (backpressure).
constexpr size_t kMaxPendingOut = 256 * 1024;
// A response that is retried is read to its end (and the connection kept) up to this size;
// beyond it, or when it ends with the connection, the connection is closed instead.
constexpr uint64_t kMaxDrainBytes = 64 * 1024;

using Event = http::Http1Parser::Event;

// A mirrored body is the one buffered for retries: nothing is held for mirroring alone.
static_assert(kMaxMirrorBodyBytes == kMaxRetryBodyBytes);

using Exchange = RoutedExchange;

class HttpOutbound : public Deferred, private AttemptIo {
 public:
  HttpOutbound(WorkerContext& ctx, RoutedClient who, int fd)
      : ctx_(ctx),
        who_(std::move(who)),
        client_(ctx.loop, fd, [this](uint32_t events) { onClient(events); }),
        clock_(ctx.loop),
        attempts_(clock_, *this, ctx.rng) {}

  void start() {
    LOG_DEBUG("routed outbound from ", who_.pod->info.name, " to ", who_.service.ns, "/",
              who_.service.name, ":", who_.port);
    ctx_.stats.inc(ctx_.stats.connections_active);
    if (!client_.watch(true).ok()) {
      closeAll(true);
    }
  }

 private:
  // ---- client side ---------------------------------------------------------------------------

  void onClient(uint32_t events) {
    if (closed_) {
      return;
    }
    if (events & EPOLLERR) {
      closeAll(true);
      return;
    }
    if (wantRead()) {
      readClient();
    }
    if (!closed_) {
      writeClient();
    }
  }

  bool wantRead() const {
    return !closed_ && !in_eof_ && !close_after_ && !paused_ && in_.size() < kMaxPendingOut &&
           client_.pending() < kMaxPendingOut && !streamBlocked();
  }
  // A streamed body is held in x_.body while its only try waits to start (a connection slot,
  // a fault delay), then in the link's queue until the backend takes it: either way, once
  // kMaxPendingOut of it is held the client is no longer read (issue 8). connect() moves
  // x_.body to the link, and writeUpstream() resumes parsing once that has drained.
  bool streamBlocked() const {
    return x_.streaming &&
           x_.body.size() + (x_.conn.link ? x_.conn.link->pending() : 0) >= kMaxPendingOut;
  }

  void readClient() {
    char buf[kReadChunk];
    Connection::ReadResult r = client_.read(buf, sizeof(buf));
    switch (r.status) {
      case Connection::ReadStatus::kAgain:
        return;
      case Connection::ReadStatus::kError:
        closeAll(true);
        return;
      case Connection::ReadStatus::kEof:
        in_eof_ = true;
        if (in_request_) {
          closeAll(true);  // the request was cut short: nothing sensible to answer
          return;
        }
        if (!x_.active) {
          close_after_ = true;
        }
        return;
      case Connection::ReadStatus::kData:
        in_.append(buf, r.bytes);
        parseRequests();
        return;
    }
  }

  void parseRequests() {
    if (parsing_) {
      return;  // finishExchange() from inside the loop below: the loop goes on by itself
    }
    if (!seen_http1_ && !closed_) {
      // h2c with prior knowledge (what gRPC clients send): the HTTP/2 routed outbound takes it.
      const http::PrefaceSniff sniffed = http::sniffH2Preface(in_);
      if (sniffed == http::PrefaceSniff::kHttp2) {
        handOverToH2();
      }
      if (sniffed != http::PrefaceSniff::kNotHttp2) {
        return;  // handed over, or not enough yet to tell
      }
      seen_http1_ = true;
    }
    parsing_ = true;
    // next() is called until it needs more bytes, even with no input left: a message whose head
    // ended the input completes on the following call.
    while (!closed_ && !paused_ && !close_after_ && !streamBlocked()) {
      std::string_view input(in_);
      Event ev = req_.next(input);
      const size_t consumed = in_.size() - input.size();
      switch (ev.type) {
        case Event::Type::kHead:
          onRequestHead();
          break;
        case Event::Type::kBody:
          onRequestBody(ev.data);
          break;
        case Event::Type::kMessageComplete:
          onRequestComplete();
          break;
        case Event::Type::kError:
          in_.clear();
          if (x_.active) {
            closeAll(true);  // mid-body: the request can no longer be finished
          } else {
            sendLocal(req_.error().status, req_.error().reason, /*close=*/true);
          }
          parsing_ = false;
          return;
        case Event::Type::kNeedMore:
          break;
      }
      if (closed_) {
        parsing_ = false;
        return;
      }
      in_.erase(0, consumed);
      if (ev.type == Event::Type::kNeedMore) {
        break;
      }
    }
    parsing_ = false;
  }

  void onRequestHead() {
    in_request_ = true;
    x_ = Exchange{};
    x_.active = true;
    const http::MessageHead& head = req_.head();
    x_.method = std::string(head.method);
    x_.started = std::chrono::steady_clock::now();
    x_.path = std::string(head.target);
    x_.head_request = head.method == "HEAD";
    x_.keep_alive = head.keep_alive;
    x_.view = ctx_.shared.routing->current();
    x_.state = ctx_.shared.workloads->current();
    Telemetry& telemetry = *ctx_.shared.telemetry;
    x_.route = decideRoute(head, {who_.service, who_.port}, *x_.view, ctx_.rng,
                           telemetry.spanExporter() != nullptr ? &telemetry.sampler() : nullptr);
    RouteDecision& route = x_.route;
    x_.flags = route.local.flags;
    if (route.local.close) {
      x_.keep_alive = false;
    }
    route.countRequest();
    if (!route.forwarded()) {
      return;  // answered once the request is read (onRequestComplete)
    }
    route.addressMirror(who_.pod, x_.state, who_.source_ip);
    x_.forwarding = true;
    attempts_.begin(route.cluster, route.attemptPolicy(x_.method), route.stats);
    if (head.expect_continue && head.framing != http::BodyFraming::kNone) {
      client_.queue("HTTP/1.1 100 Continue\r\n\r\n");  // the body is buffered here, not upstream
    }
  }

  void onRequestBody(std::string_view data) {
    x_.request_bytes += data.size();
    if (!x_.route.forwarded()) {
      return;  // read and dropped: the answer does not depend on it
    }
    if (x_.streaming && x_.conn.link != nullptr) {
      x_.conn.link->queue(data);
      (void)writeUpstream();
      return;
    }
    x_.body.append(data);  // streamed: the try waits for a connection slot or a fault delay
    if (!x_.streaming && x_.body.size() > kMaxRetryBodyBytes) {
      x_.streaming = true;  // too big to keep for a retry: forward now, try once
      dispatch();
    }
  }

  void onRequestComplete() {
    in_request_ = false;
    paused_ = true;  // one exchange at a time; pipelined requests wait in in_
    x_.body_complete = true;
    if (!x_.route.forwarded()) {
      sendLocal(x_.route.local.status, x_.route.local.body, !x_.keep_alive);
      finishExchange();
      return;
    }
    // A body too big to be kept whole was streamed to the primary backend and is not mirrored.
    std::optional<MirrorCopy> mirror = x_.route.takeMirror(x_.body, x_.streaming);
    if (!x_.dispatched) {
      dispatch();
    }
    if (mirror) {
      sendMirror(ctx_, *std::move(mirror));  // after the primary's try: it never waits for this
    }
  }

  void handOverToH2() {
    closed_ = true;
    *alive_ = false;
    const int fd = client_.release();
    ctx_.stats.inc(ctx_.stats.connections_active, -1);
    startH2Outbound(ctx_, who_, fd, std::exchange(in_, std::string()));
    ctx_.loop.deleteLater(std::unique_ptr<Deferred>(this));
  }

  void sendLocal(int status, std::string_view body, bool close) {
    if (x_.active) {
      x_.answered = status;
      x_.response_bytes = body.size();
    }
    const std::string& location = x_.route.local.location;
    client_.queue(location.empty() ? localReply(status, body, close)
                                   : redirectReply(status, location, close));
    if (close) {
      close_after_ = true;
    }
  }

  void writeClient() {
    if (!client_.flush()) {
      closeAll(true);
      return;
    }
    if (client_.pending() == 0 && close_after_ && !x_.active) {
      closeAll(false);
      return;
    }
    updateInterest();
  }

  void updateInterest() {
    if (closed_) {
      return;
    }
    client_.want(wantRead());
    if (x_.conn.link != nullptr) {
      x_.conn.link->want(/*read=*/client_.pending() < kMaxPendingOut, /*write=*/false);
    }
  }

  // ---- upstream side (AttemptIo) -------------------------------------------------------------

  void dispatch() {
    x_.dispatched = true;
    attempts_.dispatch();
  }

  const char* connect(const routing::EndpointRef& endpoint) override {
    UpstreamPool& pool = upstreamPool(ctx_);
    const Destination dest = endpointDestination(*x_.state, endpoint);
    // A WebSocket route's try may become a tunnel of two sockets (becomeTunnel).
    const bool socket = x_.route.websocket;
    const std::string key =
        UpstreamPool::keyOf(x_.route.cluster_id, *who_.pod, dest.ip, dest.port, socket);
    auto conn = pool.acquire(key, who_.pod, *x_.state, dest, who_.source_ip, socket);
    if (!conn.ok()) {
      LOG_WARN_EVERY_SECOND("routed outbound from ", who_.pod->info.name, ": ",
                            conn.status().ToString());
      return "upstream connect error or disconnect/reset before headers\n";
    }
    x_.conn = *std::move(conn);
    UpstreamLink& link = *x_.conn.link;
    link.bind([this] { onUpstream(); });
    link.queue(x_.route.head);
    link.queue(x_.body);
    if (x_.streaming) {
      x_.body.clear();  // never tried again: no reason to keep it
    }
    x_.resp = std::make_unique<http::Http1Parser>(http::Http1Parser::Kind::kResponse);
    x_.resp->setRequestContext(x_.head_request, false);
    x_.resp_bytes = false;
    x_.status = 0;
    if (!link.start()) {
      return "upstream connect error\n";
    }
    return nullptr;
  }

  void release(bool reusable) override {
    if (x_.conn.link != nullptr) {
      if (reusable && !closed_) {
        ++x_.conn.responses;
        upstreamPool(ctx_).put(std::move(x_.conn));
      } else {
        UpstreamPool::discard(ctx_.loop, std::move(x_.conn.link), /*reset=*/!reusable);
      }
      x_.conn = UpstreamConn{};
    }
    x_.resp.reset();
  }

  void answer(int status, std::string_view text, const char* flags) override {
    x_.flags = flags;
    // Before the request is read whole, its remaining bytes cannot be told from the next one's.
    sendLocal(status, text, !x_.keep_alive || !x_.body_complete);
    finishExchange();
  }

  void reset() override { closeAll(true); }

  bool retriable() const override { return x_.body_complete && !x_.streaming && !closed_; }

  // Runs on whichever worker freed the slot: only tells this one's loop.
  std::function<void()> grantCallback() override {
    EventLoop* loop = &ctx_.loop;
    return [loop, alive = alive_, this] {
      loop->post([alive, this] {
        if (*alive && !closed_ && attempts_.granted()) {
          writeClient();
        }
      });
    };
  }

  void wake() override {
    if (!closed_) {
      writeClient();
    }
  }

  void onUpstream() {
    if (closed_ || x_.conn.link == nullptr) {
      return;
    }
    if (!writeUpstream()) {
      return;
    }
    if (x_.conn.link != nullptr && client_.pending() < kMaxPendingOut) {
      readUpstream();
    }
    if (!closed_) {
      writeClient();
    }
  }

  // False when the try failed (and was dealt with).
  bool writeUpstream() {
    if (!x_.conn.link->flush()) {
      upstreamGone();
      return false;
    }
    if (x_.conn.link->pending() == 0 && x_.streaming && !closed_) {
      parseRequests();  // room again for the rest of a big body
    }
    updateInterest();
    return x_.conn.link != nullptr;
  }

  void readUpstream() {
    char buf[kReadChunk];
    Connection::ReadResult r = x_.conn.link->read(buf, sizeof(buf));
    if (r.status == Connection::ReadStatus::kAgain) {
      return;
    }
    if (r.status == Connection::ReadStatus::kError) {
      upstreamGone();
      return;
    }
    if (r.status == Connection::ReadStatus::kEof) {
      Event ev = x_.resp->finish();
      if (ev.type == Event::Type::kMessageComplete && x_.status >= 200) {
        completeResponse(false);  // an until-close body ends here
      } else {
        upstreamGone();
      }
      return;
    }
    x_.resp_bytes = true;
    std::string_view input(buf, r.bytes);
    while (x_.conn.link != nullptr) {
      Event ev = x_.resp->next(input);
      switch (ev.type) {
        case Event::Type::kNeedMore:
          return;
        case Event::Type::kHead:
          if (x_.resp->head().status == 101 && x_.route.websocket) {
            becomeTunnel(input);
            return;
          }
          if (!onResponseHead()) {
            return;
          }
          break;
        case Event::Type::kBody:
          if (attempts_.draining()) {
            x_.drained += ev.data.size();
            if (x_.drained > kMaxDrainBytes) {
              attempts_.abandonDrain();
              return;
            }
            break;
          }
          client_.queue(ev.data);
          x_.response_bytes += ev.data.size();
          break;
        case Event::Type::kMessageComplete:
          if (x_.status >= 200) {
            completeResponse(x_.resp->head().keep_alive && input.empty());
            return;
          }
          break;  // an interim (1xx) response: the final one follows
        case Event::Type::kError:
          attempts_.invalidResponse("invalid response from upstream\n");
          return;
      }
    }
  }

  // False when the try ended here (a retry, or a refusal).
  bool onResponseHead() {
    const http::MessageHead& head = x_.resp->head();
    x_.status = head.status;
    if (head.status < 200) {
      if (head.status == 101) {
        attempts_.invalidResponse("unexpected protocol switch\n");
        return false;
      }
      x_.status = 0;
      return true;  // 100 Continue was answered here already; others are dropped
    }
    const bool small = head.framing == http::BodyFraming::kNone ||
                       head.framing == http::BodyFraming::kChunked ||
                       (head.framing == http::BodyFraming::kContentLength &&
                        head.content_length <= kMaxDrainBytes);
    switch (attempts_.responseHead(head.status, head.keep_alive, small)) {
      case UpstreamAttempts::HeadVerdict::kDrain:
        x_.drained = 0;
        return true;
      case UpstreamAttempts::HeadVerdict::kRetried:
        return false;
      case UpstreamAttempts::HeadVerdict::kForward:
        break;
    }
    x_.answered = head.status;
    const bool close = !x_.keep_alive || head.framing == http::BodyFraming::kUntilClose;
    if (close) {
      close_after_ = true;
    }
    client_.queue(forwardedResponseHead(head, close, x_.route.response_edits));
    return true;
  }

  // The backend accepted a WebSocket handshake (101): both connections become one tunnel
  // (agent/http/websocket_tunnel.h). The exchange is reported as answered 101.
  void becomeTunnel(std::string_view rest) {
    if (attempts_.responseHead(101, false, false) != UpstreamAttempts::HeadVerdict::kForward ||
        !client_.flush() || client_.pending() > 0) {
      closeAll(true);  // (a slow client still owed earlier bytes: no clean switch)
      return;
    }
    std::string to_client = upgradeResponse(x_.resp->head(), x_.route.response_edits, rest);
    x_.answered = 101;
    const int upstream = x_.conn.link->takeSocket();  // a socket link: WebSocket routes have one
    UpstreamPool::discard(ctx_.loop, std::move(x_.conn.link), /*reset=*/true);
    if (upstream < 0) {
      closeAll(true);
      return;
    }
    (void)attempts_.responseComplete(false);  // the try ends; its connection is the tunnel now
    attempts_.finish();
    report();
    closed_ = true;
    *alive_ = false;
    startWebSocketTunnel(ctx_, client_.release(), upstream, std::exchange(in_, std::string()),
                         std::move(to_client));  // connections_active: the tunnel's now
    ctx_.loop.deleteLater(std::unique_ptr<Deferred>(this));
  }

  void completeResponse(bool reusable) {
    if (attempts_.responseComplete(reusable)) {
      finishExchange();
    }
  }

  // The upstream connection closed or failed before the response was complete.
  void upstreamGone() {
    // A fresh connection that never answered most likely never connected (the link hides the
    // connect, or the destination's agent refused the stream): nothing reached the backend. A
    // reused one may have delivered it.
    attempts_.upstreamGone(x_.resp_bytes || x_.conn.responses > 0);
  }

  // ---- the exchange's end --------------------------------------------------------------------

  void finishExchange() {
    attempts_.finish();
    report();
    const bool request_read = x_.body_complete;
    x_ = Exchange{};
    if (!request_read) {
      close_after_ = true;  // answered early: the rest of this request is never parsed
      in_request_ = false;
    }
    paused_ = false;
    if (in_eof_) {
      close_after_ = true;
    }
    if (!closed_ && !close_after_) {
      parseRequests();
    }
  }

  void report() {
    reportExchange(*ctx_.shared.workloads, *ctx_.shared.telemetry, who_, x_, attempts_.endpoint());
  }

  void closeAll(bool reset) {
    if (closed_) {
      return;
    }
    // The client went away (or must be reset): not the endpoint's fault.
    closed_ = true;
    attempts_.finish();
    if (x_.active && x_.answered == 0) {
      x_.flags = "DC";  // downstream connection termination before an answer
    }
    report();
    *alive_ = false;
    client_.close(reset);
    ctx_.stats.inc(ctx_.stats.connections_active, -1);
    ctx_.loop.deleteLater(std::unique_ptr<Deferred>(this));
  }

  WorkerContext& ctx_;
  RoutedClient who_;
  Connection client_;
  std::string in_;  // client bytes not parsed yet
  bool in_eof_ = false;
  bool in_request_ = false;
  bool paused_ = false;
  bool parsing_ = false;
  bool close_after_ = false;
  bool closed_ = false;
  bool seen_http1_ = false;  // the first bytes were not the h2 preface
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for posted grants
  http::Http1Parser req_{http::Http1Parser::Kind::kRequest};
  Exchange x_;
  LoopClock clock_;
  UpstreamAttempts attempts_;
};

}  // namespace

void startHttpOutbound(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& source,
                       const SocketAddress& original, const std::string& source_ip, int fd) {
  auto state = ctx.shared.workloads->current();
  auto vip = state->serviceByVip(original.ip(), original.port());
  if (!vip || ctx.shared.routing == nullptr) {
    closeWithReset(fd);
    return;
  }
  auto* conn = new HttpOutbound(ctx,
                                RoutedClient{.pod = source,
                                             .service = vip->service->key,
                                             .vip = original.ip(),
                                             .port = original.port(),
                                             .source_ip = source_ip},
                                fd);
  conn->start();
}

}  // namespace ferry::agent
