// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// StreamBridge (hbone_tunnel.h): one app socket joined with one HBONE stream, and the stream's
// resumption across agent restarts (docs/upgrades.md).
#include "agent/drain/resume_registry.h"
#include "agent/io/sockets.h"
#include "agent/proxy/hbone_tunnel.h"
#include "log/log.h"

namespace ferry::agent {

// ---- StreamBridge ---------------------------------------------------------------------------

StreamBridge::StreamBridge(WorkerContext& ctx, TunnelConnection* tunnel, hbone::StreamId id, int fd,
                           bool fd_connecting, bool client)
    : ctx_(ctx),
      tunnel_(tunnel),
      id_(id),
      sock_(ctx.loop, fd, [this](uint32_t events) { onEvents(events); }),
      client_(client),
      up_(ctx.shared.config->max_buffer_bytes),
      fd_connecting_(fd_connecting),
      opened_(client) {
  ctx_.stats.inc(ctx_.stats.connections_active);
}

StreamBridge::~StreamBridge() {
  if (connect_timer_ != 0) {
    ctx_.loop.cancelTimer(connect_timer_);
  }
}

void StreamBridge::start() {
  (void)sock_.watch(/*read=*/!fd_connecting_, /*write=*/fd_connecting_);
  if (fd_connecting_) {
    connect_timer_ = ctx_.loop.addTimer(
        std::chrono::milliseconds(ctx_.shared.config->connect_timeout_ms), [this] {
          connect_timer_ = 0;
          if (fd_connecting_ && !done_) {
            fd_connecting_ = false;
            auto cb = std::move(on_connected_);
            if (cb) {
              cb(false);
            }
          }
        });
  }
}

void StreamBridge::onEvents(uint32_t events) {
  if (done_) {
    return;
  }
  if (fd_connecting_) {
    bool ok = socketError(sock_.fd()) == 0 && !(events & (EPOLLERR | EPOLLHUP));
    fd_connecting_ = false;
    if (connect_timer_ != 0) {
      ctx_.loop.cancelTimer(connect_timer_);
      connect_timer_ = 0;
    }
    auto cb = std::move(on_connected_);
    if (cb) {
      cb(ok);  // may finish() this bridge
    }
    if (done_) {
      return;
    }
  } else if (events & EPOLLERR) {
    resetStream();
    return;
  }
  fd_blocked_ = false;
  pump();
}

void StreamBridge::onResponse(int status) {
  if (resuming_) {
    onResumeAnswer(status);
    return;
  }
  if (status == 200) {
    if (resume_ != nullptr && !tunnel_->conn().hasStream(id_)) {
      // Closed in the same read as its answer, which went with the stream: a hand-over's FRSM
      // right behind the 200. Only an agent that accepted the offer sends FRSM, so the offer
      // counts as accepted and the close that follows decides (any other close ends it).
      resume_->accepted = true;
      markResumable();
    } else if (resume_ != nullptr) {
      // "v1" alone accepts the offer; an agent without the protocol answers nothing, and the
      // stream goes on as streams always did.
      std::optional<hbone::ResumeHeader> h = hbone::parseResume(tunnel_->conn().resumeHeader(id_));
      if (h && !h->token && !h->delivered && !h->retry) {
        resume_->accepted = true;
        tunnel_->conn().setPromptCredit(id_);
        markResumable();
      } else {
        resume_.reset();
      }
    }
    return;
  }
  // Refused by the destination's agent (policy 403, bad authority 400, app down 503): the app
  // sees a reset, as it would from a refused connect.
  ctx_.stats.inc(status == 403 ? ctx_.stats.policy_denied : ctx_.stats.outbound_failed);
  LOG_INFO_EVERY_SECOND("hbone stream refused by peer with status ", status);
  tunnel_->detach(id_);
  finish(true);
}

void StreamBridge::pump() {
  if (done_ || fd_connecting_) {
    return;
  }
  hbone::HboneConnection& conn = tunnel_->conn();
  // Stream -> socket: consume only what the socket took (that is what opens the peer's window).
  if (!sock_.writeShut()) {
    while (true) {
      absl::Span<const uint8_t> data = conn.peek(id_);
      if (data.empty()) {
        break;
      }
      ssize_t n = sock_.write(data.data(), data.size());
      if (n < 0) {
        resetStream();
        return;
      }
      conn.consume(id_, static_cast<size_t>(n));
      bytes_down_ += static_cast<uint64_t>(n);
      if (static_cast<size_t>(n) < data.size()) {
        fd_blocked_ = true;  // EPOLLOUT resumes
        break;
      }
    }
    // A stream that is gone reads as ended: only a clean close (closed_clean_) means that. A
    // stream reset, or suspended for a hand-over, whose kClosed is not dispatched yet, must not
    // look like an end to the app.
    if (!fd_blocked_ && opened_ && (closed_clean_ || conn.hasStream(id_))) {
      uint8_t none[1];
      if (conn.read(id_, absl::Span<uint8_t>(none, 0)).eof) {
        sock_.shutdownWrite();
      }
    }
  }
  // Socket -> stream.
  if (opened_) {
    if (!fd_eof_) {
      Connection::ReadStatus status = sock_.fill(up_);
      if (status == Connection::ReadStatus::kError) {
        resetStream();
        return;
      }
      fd_eof_ = status == Connection::ReadStatus::kEof;
    }
    while (!up_.empty()) {
      size_t took = conn.write(id_, up_.readable());
      if (took == 0) {
        break;  // kWritable will call again
      }
      if (resume_ != nullptr) {
        recordSent(took);
      }
      up_.consume(took);
      bytes_up_ += took;
    }
    if (up_.empty()) {
      up_.shrinkIfEmpty();
      if (fd_eof_ && !tunnel_shut_) {
        conn.shutdownWrite(id_);
        tunnel_shut_ = true;
        end_sent_at_ = std::chrono::steady_clock::now();
      }
    }
  }
  if (resumable()) {
    if (!confirmFromWindow()) {
      resetStream();
      return;
    }
    reportLedger();
  }
  updateInterest();
  tunnel_->flushSoon();
}

// The first `n` bytes of up_ went onto the stream: the ledger keeps them until the peer's
// window credit says its app has them (bytes of a replay are in it already).
void StreamBridge::recordSent(size_t n) {
  const size_t skip = std::min(n, resume_->unrecorded);
  resume_->unrecorded -= skip;
  if (n > skip) {
    resume_->ledger.record(up_.readable().subspan(skip, n - skip));
  }
}

// False when the peer's window credit cannot be true (it counts bytes nobody sent): the stream
// cannot be trusted to resume.
bool StreamBridge::confirmFromWindow() {
  absl::StatusOr<uint64_t> confirmed = tunnel_->conn().confirmedDelivered(id_);
  if (!confirmed.ok()) {
    // Closed already (its last credit is lost with it): a resume's offsets settle the rest.
    return confirmed.status().code() == absl::StatusCode::kNotFound;
  }
  if (absl::Status s = resume_->ledger.confirm(resume_->stream_base + *confirmed); !s.ok()) {
    LOG_WARN_EVERY_SECOND("resumable stream: ", s.ToString(), "; resetting it");
    return false;
  }
  return true;
}

void StreamBridge::acceptResume(ResumableSide side) {
  resume_ = std::make_unique<ResumableSide>(std::move(side));
  resume_->accepted = true;
  tunnel_->conn().setPromptCredit(id_);
  markResumable();
}

void StreamBridge::resumeOf(HandedStream stream, std::chrono::steady_clock::time_point deadline,
                            int attempt) {
  resume_deadline_ = deadline;
  resume_attempt_ = attempt;
  opened_ = false;  // not a byte either way before the answer
  resuming_ = std::make_unique<HandedStream>(std::move(stream));
  resuming_->app_fd = -1;  // the socket is sock_ now
  ctx_.resuming_bridges.insert(this);
}

HandedStream StreamBridge::abandonResume() {
  HandedStream stream = std::move(*resuming_);
  resuming_.reset();
  ctx_.resuming_bridges.erase(this);
  // FRSM, not CANCEL: if the destination already continued the stream, it parks it again.
  if (tunnel_->conn().hasStream(id_)) {
    tunnel_->conn().reset(id_, hbone::kSuspendErrorCode);
  }
  tunnel_->detach(id_);
  stream.app_fd = sock_.release();
  endDetached();
  tunnel_->flush();
  return stream;
}

bool StreamBridge::continueFrom(HandedStream stream, uint64_t peer_delivered) {
  auto side = std::make_unique<ResumableSide>();
  side->ledger = hbone::RetransmitLedger::restore(
      stream.confirmed,
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(stream.unconfirmed.data()),
                          stream.unconfirmed.size()));
  absl::StatusOr<absl::Span<const uint8_t>> replay = side->ledger.replayFrom(peer_delivered);
  if (!replay.ok()) {
    LOG_WARN_EVERY_SECOND("resumed stream: ", replay.status().ToString(), "; resetting it");
    return false;
  }
  up_.append(replay->data(), replay->size());  // before any byte the app sends from now on
  side->unrecorded = replay->size();
  side->stream_base = peer_delivered;
  side->delivered_base = stream.delivered;
  side->accepted = true;
  fd_eof_ = stream.app_eof;
  side->token = stream.token;
  side->role = stream.role;
  side->authority = std::move(stream.authority);
  resume_ = std::move(side);
  opened_ = true;
  tunnel_->conn().setPromptCredit(id_);
  markResumable();
  ctx_.stats.inc(ctx_.stats.streams_resumed);
  return true;
}

void StreamBridge::onResumeAnswer(int status) {
  HandedStream stream = std::move(*resuming_);
  resuming_.reset();
  ctx_.resuming_bridges.erase(this);
  ctx_.shared.streams_in_resume.fetch_sub(1);
  if (status == 200) {
    std::optional<hbone::ResumeHeader> h = hbone::parseResume(tunnel_->conn().resumeHeader(id_));
    if (h && h->delivered && !h->token && !h->retry &&
        continueFrom(std::move(stream), *h->delivered)) {
      pump();
      return;
    }
    ctx_.stats.inc(ctx_.stats.streams_resume_failed);
    tunnel_->conn().reset(id_, NGHTTP2_PROTOCOL_ERROR);
    tunnel_->detach(id_);
    finish(true);
    tunnel_->flush();
    return;
  }
  tunnel_->detach(id_);
  if (status != hbone::kResumeRetry) {
    LOG_INFO_EVERY_SECOND("resume of a stream refused with status ", status,
                          "; resetting its app connection");
    ctx_.stats.inc(ctx_.stats.streams_resume_failed);
    finish(true);
    return;
  }
  // Not there yet (its hand-over on the destination's node is in flight): ask again.
  stream.app_fd = sock_.release();
  endDetached();
  resumeClientStream(ctx_, std::move(stream), resume_deadline_, resume_attempt_ + 1);
}

HandedStream StreamBridge::detach(uint32_t code) {
  hbone::HboneConnection& conn = tunnel_->conn();
  (void)confirmFromWindow();
  if (!up_.empty()) {
    recordSent(up_.size());  // read from the app, never on the wire: the peer never had them
    up_.consume(up_.size());
  }
  HandedStream out;
  out.role = resume_->role;
  out.token = resume_->token;
  out.pod_uid = tunnel_->localPodUid();
  out.peer = conn.peer().uri();
  out.local = conn.local().uri();
  out.authority = resume_->authority;
  if (out.role == HandedStream::Role::kClient) {
    if (absl::StatusOr<hbone::Authority> a = hbone::Authority::parse(out.authority); a.ok()) {
      out.dial = a->address().ip();  // pod to pod: the authority is the destination pod's
    }
  }
  const hbone::RetransmitLedger& ledger = resume_->ledger;
  out.sent = ledger.sentOffset();
  out.confirmed = ledger.confirmedOffset();
  out.unconfirmed.assign(reinterpret_cast<const char*>(ledger.unconfirmed().data()),
                         ledger.unconfirmed().size());
  out.delivered = resume_->delivered_base + bytes_down_;
  out.app_eof = fd_eof_;
  out.peer_eof = sock_.writeShut();
  if (conn.hasStream(id_)) {
    conn.reset(id_, code);
  }
  tunnel_->detach(id_);
  out.app_fd = sock_.release();
  endDetached();
  tunnel_->flush();
  return out;
}

// The peer's agent suspended the stream to hand it to its successor.
void StreamBridge::suspend() {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(ctx_.shared.config->resume_window_ms);
  HandedStream stream = detach(0);
  ctx_.stats.inc(ctx_.stats.streams_suspended);
  if (stream.role == HandedStream::Role::kClient) {
    // Resumed from this worker's loop, outside the tunnel's event dispatch.
    WorkerContext* ctx = &ctx_;
    auto held = std::make_shared<HandedStream>(std::move(stream));
    ctx_.loop.post([ctx, held, deadline] { resumeClientStream(*ctx, std::move(*held), deadline); });
    return;
  }
  const int fd = stream.app_fd;
  if (ctx_.shared.resumes == nullptr || !ctx_.shared.resumes->park(std::move(stream), deadline)) {
    closeWithReset(fd);
  }
}

// The socket failed: the stream is reset and the bridge goes.
void StreamBridge::resetStream() {
  tunnel_->conn().reset(id_);
  tunnel_->detach(id_);
  finish(true);
  tunnel_->flush();
}

void StreamBridge::updateInterest() {
  if (done_) {
    return;
  }
  sock_.want(/*read=*/opened_ && !fd_eof_ && !up_.full(),
             /*write=*/fd_connecting_ || fd_blocked_);
}

void StreamBridge::onTunnelClosed(uint32_t error_code) {
  if (done_) {
    return;
  }
  if (error_code == hbone::kSuspendErrorCode && resumable()) {
    suspend();
    return;
  }
  if (error_code == 0) {
    closed_clean_ = true;
    pump();  // deliver anything left, then the end
  }
  finish(error_code != 0 || !sock_.writeShut());
}

void StreamBridge::onTunnelFailed() {
  if (resuming_) {
    // The connection carrying the resume went away before the answer: try another.
    HandedStream stream = std::move(*resuming_);
    resuming_.reset();
    ctx_.resuming_bridges.erase(this);
    ctx_.shared.streams_in_resume.fetch_sub(1);
    stream.app_fd = sock_.release();
    endDetached();
    resumeClientStream(ctx_, std::move(stream), resume_deadline_, resume_attempt_ + 1);
    return;
  }
  finish(true);
}

void StreamBridge::abort() {
  tunnel_->detach(id_);
  finish(true);
}

void StreamBridge::finish(bool reset) {
  if (done_) {
    return;
  }
  done_ = true;
  if (resuming_) {
    ctx_.resuming_bridges.erase(this);
    ctx_.shared.streams_in_resume.fetch_sub(1);
  }
  if (resumable()) {
    unmarkResumable();
    if (resume_->role == HandedStream::Role::kServer && ctx_.shared.resumes != nullptr) {
      ctx_.shared.resumes->remove(resume_->token);
    }
  }
  sock_.close(reset);
  ctx_.stats.inc(ctx_.stats.connections_active, -1);
  ctx_.stats.inc(client_ ? ctx_.stats.bytes_sent_upstream : ctx_.stats.bytes_sent_downstream,
                 static_cast<int64_t>(bytes_up_));
  ctx_.stats.inc(client_ ? ctx_.stats.bytes_sent_downstream : ctx_.stats.bytes_sent_upstream,
                 static_cast<int64_t>(bytes_down_));
  // bytes_up_ left the local socket: the source's bytes on the client side, the app's answer
  // on the server side.
  telemetry_.close({.bytes_from_source = client_ ? bytes_up_ : bytes_down_,
                    .bytes_to_source = client_ ? bytes_down_ : bytes_up_,
                    .reset = reset});
  ctx_.loop.deleteLater(std::unique_ptr<Deferred>(this));
}

void StreamBridge::markResumable() {
  ctx_.resumable_bridges.insert(this);
  ctx_.stats.inc(ctx_.stats.resumable_streams);
}

void StreamBridge::unmarkResumable() {
  ctx_.resumable_bridges.erase(this);
  ctx_.stats.inc(ctx_.stats.resumable_streams, -1);
  ctx_.stats.inc(ctx_.stats.resume_ledger_bytes, -ledger_reported_);
  ledger_reported_ = 0;
}

// The ledger's memory, in the agent-wide gauge.
void StreamBridge::reportLedger() {
  const auto held = static_cast<int64_t>(resume_->ledger.heldBytes());
  ctx_.stats.inc(ctx_.stats.resume_ledger_bytes, held - ledger_reported_);
  ledger_reported_ = held;
}

// The stream left this bridge (handed on, or to be asked again): the socket is someone else's.
void StreamBridge::endDetached() {
  done_ = true;
  if (resumable()) {
    unmarkResumable();
  }
  telemetry_.close({.bytes_from_source = client_ ? bytes_up_ : bytes_down_,
                    .bytes_to_source = client_ ? bytes_down_ : bytes_up_,
                    .reset = false});
  ctx_.stats.inc(ctx_.stats.connections_active, -1);
  ctx_.loop.deleteLater(std::unique_ptr<Deferred>(this));
}

}  // namespace ferry::agent
