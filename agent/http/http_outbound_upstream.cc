// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The routed outbound's upstream side (AttemptIo): each try's upstream link from the pool
// (upstream_link.h), the request written to it, the response parsed and relayed back with
// backpressure, a retried response drained, a WebSocket 101 turned into a tunnel
// (http_outbound_conn.h).
#include <unistd.h>

#include <functional>
#include <memory>
#include <string_view>
#include <utility>

#include "agent/http/http_messages.h"
#include "agent/http/http_outbound_conn.h"
#include "agent/http/websocket_tunnel.h"
#include "log/log.h"

namespace ferry::agent::routed {

void HttpOutbound::dispatch() {
  x_.dispatched = true;
  attempts_.dispatch();
}

const char* HttpOutbound::connect(const routing::EndpointRef& endpoint) {
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

void HttpOutbound::release(bool reusable) {
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

void HttpOutbound::answer(int status, std::string_view text, const char* flags) {
  x_.flags = flags;
  // Before the request is read whole, its remaining bytes cannot be told from the next one's.
  sendLocal(status, text, !x_.keep_alive || !x_.body_complete);
  finishExchange();
}

std::function<void()> HttpOutbound::grantCallback() {
  EventLoop* loop = &ctx_.loop;
  return [loop, alive = alive_, this] {
    loop->post([alive, this] {
      if (*alive && !closed_ && attempts_.granted()) {
        writeClient();
      }
    });
  };
}

void HttpOutbound::wake() {
  if (!closed_) {
    writeClient();
  }
}

void HttpOutbound::onUpstream() {
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

bool HttpOutbound::writeUpstream() {
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

void HttpOutbound::readUpstream() {
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

bool HttpOutbound::onResponseHead() {
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
  const bool small =
      head.framing == http::BodyFraming::kNone || head.framing == http::BodyFraming::kChunked ||
      (head.framing == http::BodyFraming::kContentLength && head.content_length <= kMaxDrainBytes);
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

void HttpOutbound::becomeTunnel(std::string_view rest) {
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

void HttpOutbound::completeResponse(bool reusable) {
  if (attempts_.responseComplete(reusable)) {
    finishExchange();
  }
}

void HttpOutbound::upstreamGone() {
  // A fresh connection that never answered most likely never connected (the link hides the
  // connect, or the destination's agent refused the stream): nothing reached the backend. A
  // reused one may have delivered it.
  attempts_.upstreamGone(x_.resp_bytes || x_.conn.responses > 0);
}

}  // namespace ferry::agent::routed
