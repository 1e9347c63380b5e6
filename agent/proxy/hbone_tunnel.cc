// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/proxy/hbone_tunnel.h"

#include "agent/io/sockets.h"
#include "log/log.h"

namespace ferry::agent {

using hbone::HboneEventType;

// ---- TunnelConnection ---------------------------------------------------------------------

TunnelConnection::TunnelConnection(WorkerContext& ctx, int fd, bool connecting, bool client)
    : ctx_(ctx),
      sock_(ctx.loop, fd, [this](uint32_t events) { onEvents(events); }),
      connecting_(connecting),
      client_(client) {
  (void)sock_.watch(/*read=*/!connecting, /*write=*/connecting);
}

TunnelConnection::~TunnelConnection() {
  *alive_ = false;  // sock_ closes the socket if still open
}

void TunnelConnection::setConnection(std::unique_ptr<hbone::HboneConnection> conn) {
  conn_ = std::move(conn);
}

void TunnelConnection::onEvents(uint32_t events) {
  if (closed_) {
    return;
  }
  if (connecting_) {
    if (socketError(sock_.fd()) != 0 || (events & (EPOLLERR | EPOLLHUP))) {
      close("connect to peer 15008 failed");
      return;
    }
    connecting_ = false;
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    for (int i = 0; i < 16 && !eof_; ++i) {
      absl::Span<uint8_t> room = conn_->networkIn().prepare(16384);
      Connection::ReadResult r = sock_.read(reinterpret_cast<char*>(room.data()), room.size());
      if (r.status == Connection::ReadStatus::kData) {
        conn_->networkIn().commit(r.bytes);
        if (absl::Status s = conn_->onNetworkInput(); !s.ok()) {
          break;  // flush() sees the error, sends any alert and closes
        }
        if (r.bytes < room.size()) {
          break;
        }
        continue;
      }
      if (r.status != Connection::ReadStatus::kAgain) {
        eof_ = true;
        conn_->onNetworkEof();
      }
      break;
    }
  }
  flush();
}

void TunnelConnection::flush() {
  if (closed_) {
    return;
  }
  if (in_flush_) {
    flush_again_ = true;
    return;
  }
  in_flush_ = true;
  do {
    flush_again_ = false;
    dispatch();
    if (closed_) {
      return;
    }
    if (!writeOut()) {
      in_flush_ = false;
      close("write to peer failed");
      return;
    }
    // Producing may have closed streams (their END_STREAM went out): dispatched now, not at
    // the tunnel's next event.
  } while (flush_again_ || conn_->hasEvents());
  in_flush_ = false;
  afterEvents();
  if (closed_) {
    return;
  }
  if (!conn_->error().ok() && conn_->networkOut().empty()) {
    close(std::string(conn_->error().message()));
    return;
  }
  if ((eof_ || conn_->finished()) && conn_->networkOut().empty() && bridges_.empty()) {
    close(eof_ ? "peer closed" : "finished");
    return;
  }
  if (eof_ && conn_->networkOut().empty()) {
    close("peer closed");
    return;
  }
  if (conn_->creditOwed() && credit_timer_ == 0) {
    // Resumable streams that went quiet: their peer's ledgers empty a moment later, without an
    // extra frame per message on busy streams (hbone/connection.h, setPromptCredit).
    credit_timer_ = ctx_.loop.addTimer(kOwedCreditDelay, [this] {
      credit_timer_ = 0;
      conn_->sendOwedCredit();
      flush();
    });
  }
  updateInterest();
}

void TunnelConnection::flushSoon() {
  if (in_flush_) {
    flush_again_ = true;  // the flush under way dispatches and writes out once more
    return;
  }
  if (flush_soon_) {
    return;
  }
  flush_soon_ = true;
  ctx_.loop.afterBatch([this, alive = alive_] {
    if (*alive) {
      flush_soon_ = false;
      flush();
    }
  });
}

void TunnelConnection::dispatch() {
  conn_->takeEvents(events_);
  for (size_t i = 0; i < events_.size() && !closed_; ++i) {
    const hbone::HboneEvent e = events_[i];
    if (e.type == HboneEventType::kHandshakeDone) {
      ctx_.stats.inc(client_ ? ctx_.stats.tls_handshakes_client : ctx_.stats.tls_handshakes_server);
      onHandshakeDone();
      continue;
    }
    if (e.type == HboneEventType::kStreamOpened) {
      onStreamOpened(e.stream);
      continue;
    }
    if (e.type == HboneEventType::kGoaway) {
      continue;  // acceptsNewStreams() turns false; streams in flight finish
    }
    auto it = bridges_.find(e.stream);
    if (it == bridges_.end()) {
      continue;
    }
    TunnelStream* b = it->second;
    switch (e.type) {
      case HboneEventType::kResponse:
        b->onResponse(e.status);
        break;
      case HboneEventType::kReadable:
        b->onTunnelReadable();
        break;
      case HboneEventType::kWritable:
        b->onTunnelWritable();
        break;
      case HboneEventType::kClosed:
        bridges_.erase(e.stream);
        b->onTunnelClosed(e.error_code);
        break;
      default:
        break;
    }
  }
}

void TunnelConnection::readPending() {
  if (!closed_ && !connecting_ && !eof_) {
    onEvents(EPOLLIN);
  }
}

bool TunnelConnection::writeOut() {
  want_write_ = false;
  if (connecting_) {
    return true;
  }
  (void)conn_->produce();  // batch_output: what the streams queued since the last flush
  net::ByteBuffer& out = conn_->networkOut();
  while (!out.empty()) {
    if (!sock_.writeFrom(out)) {
      return false;
    }
    if (!out.empty()) {
      want_write_ = true;  // the socket is full: EPOLLOUT resumes
      return true;
    }
    (void)conn_->onNetworkOutputDrained();  // may produce the frames paused at high water
    out.shrinkIfEmpty();
  }
  return true;
}

void TunnelConnection::updateInterest() {
  sock_.want(/*read=*/!eof_, /*write=*/connecting_ || want_write_);
}

void TunnelConnection::close(const std::string& why) {
  if (closed_) {
    return;
  }
  closed_ = true;
  if (credit_timer_ != 0) {
    ctx_.loop.cancelTimer(credit_timer_);
    credit_timer_ = 0;
  }
  LOG_DEBUG("hbone connection closed: ", why);
  if (conn_ && !conn_->handshakeDone()) {
    ctx_.stats.inc(ctx_.stats.tls_handshake_failures);
    if (conn_->error().code() == absl::StatusCode::kPermissionDenied) {
      ctx_.stats.inc(ctx_.stats.tls_peer_rejected);
    }
    LOG_INFO_EVERY_SECOND(client_ ? "outbound" : "inbound", " HBONE handshake failed: ", why);
  }
  auto bridges = std::move(bridges_);
  bridges_.clear();
  for (auto& [id, b] : bridges) {
    b->onTunnelFailed();
  }
  onClosing();
  sock_.close(/*reset=*/!conn_ || !conn_->error().ok());
  ctx_.loop.deleteLater(std::unique_ptr<Deferred>(this));
}

}  // namespace ferry::agent
