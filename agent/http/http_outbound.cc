// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The routed outbound's client side: HTTP/1.1 requests parsed one at a time (h2c handed to
// h2_outbound.h), answers written back, and the exchange's end (http_outbound_conn.h).
#include "agent/http/http_outbound.h"

#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "agent/http/h2_outbound.h"
#include "agent/http/http_messages.h"
#include "agent/http/http_outbound_conn.h"
#include "http/http2_filter.h"
#include "log/log.h"

namespace ferry::agent {
namespace routed {

void HttpOutbound::start() {
  LOG_DEBUG("routed outbound from ", who_.pod->info.name, " to ", who_.service.ns, "/",
            who_.service.name, ":", who_.port);
  ctx_.stats.inc(ctx_.stats.connections_active);
  if (!client_.watch(true).ok()) {
    closeAll(true);
  }
}

void HttpOutbound::onClient(uint32_t events) {
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

bool HttpOutbound::wantRead() const {
  return !closed_ && !in_eof_ && !close_after_ && !paused_ && in_.size() < kMaxPendingOut &&
         client_.pending() < kMaxPendingOut && !streamBlocked();
}

bool HttpOutbound::streamBlocked() const {
  return x_.streaming &&
         x_.body.size() + (x_.conn.link ? x_.conn.link->pending() : 0) >= kMaxPendingOut;
}

void HttpOutbound::readClient() {
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

void HttpOutbound::parseRequests() {
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

void HttpOutbound::onRequestHead() {
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

void HttpOutbound::onRequestBody(std::string_view data) {
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

void HttpOutbound::onRequestComplete() {
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

void HttpOutbound::handOverToH2() {
  closed_ = true;
  *alive_ = false;
  const int fd = client_.release();
  ctx_.stats.inc(ctx_.stats.connections_active, -1);
  startH2Outbound(ctx_, who_, fd, std::exchange(in_, std::string()));
  ctx_.loop.deleteLater(std::unique_ptr<Deferred>(this));
}

void HttpOutbound::sendLocal(int status, std::string_view body, bool close) {
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

void HttpOutbound::writeClient() {
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

void HttpOutbound::updateInterest() {
  if (closed_) {
    return;
  }
  client_.want(wantRead());
  if (x_.conn.link != nullptr) {
    x_.conn.link->want(/*read=*/client_.pending() < kMaxPendingOut, /*write=*/false);
  }
}

void HttpOutbound::finishExchange() {
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

void HttpOutbound::report() {
  reportExchange(*ctx_.shared.workloads, *ctx_.shared.telemetry, who_, x_, attempts_.endpoint());
}

void HttpOutbound::closeAll(bool reset) {
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

}  // namespace routed

void startHttpOutbound(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& source,
                       const SocketAddress& original, const std::string& source_ip, int fd) {
  auto state = ctx.shared.workloads->current();
  auto vip = state->serviceByVip(original.ip(), original.port());
  if (!vip || ctx.shared.routing == nullptr) {
    closeWithReset(fd);
    return;
  }
  auto* conn = new routed::HttpOutbound(ctx,
                                        RoutedClient{.pod = source,
                                                     .service = vip->service->key,
                                                     .vip = original.ip(),
                                                     .port = original.port(),
                                                     .source_ip = source_ip},
                                        fd);
  conn->start();
}

}  // namespace ferry::agent
