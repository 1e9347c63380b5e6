// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/relay_end.h"

#include <utility>

namespace ferry::agent {

namespace {
// A send queue that grew past this is given back once it has drained (an idle stream keeps no
// buffer).
constexpr size_t kKeptQueue = 16 * 1024;
}  // namespace

StreamIo::StreamIo(TunnelConnection& tunnel, hbone::StreamId id, TunnelStream* owner)
    : tunnel_(&tunnel), id_(id) {
  tunnel.attach(id, owner);
}

void StreamIo::detach() {
  if (tunnel_ != nullptr) {
    tunnel_->detach(id_);
    tunnel_ = nullptr;
  }
}

Connection::ReadResult StreamIo::read(char* buf, size_t room) {
  using Status = Connection::ReadStatus;
  if (failed_) {
    return {Status::kError};
  }
  if (tunnel_ == nullptr) {
    return {closed_clean_ ? Status::kEof : Status::kError};
  }
  hbone::HboneConnection& conn = tunnel_->conn();
  if (!conn.hasStream(id_)) {
    // Released, and its kClosed not dispatched yet: that event says whether it ended or was
    // reset, and wakes the owner.
    return {Status::kAgain};
  }
  hbone::ReadResult r = conn.read(id_, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(buf), room));
  if (r.bytes > 0) {
    bytes_in_ += r.bytes;
    return {Status::kData, r.bytes};  // an end behind these bytes is read next time
  }
  return {r.eof ? Status::kEof : Status::kAgain};
}

bool StreamIo::flush() {
  while (pending() > 0) {
    if (tunnel_ == nullptr || failed_) {
      return false;
    }
    hbone::HboneConnection& conn = tunnel_->conn();
    const size_t took =
        conn.write(id_, absl::Span<const uint8_t>(
                            reinterpret_cast<const uint8_t*>(out_.data()) + out_off_, pending()));
    if (took == 0) {
      // Full (kWritable follows), or closing (its kClosed follows) unless already forgotten.
      return conn.hasStream(id_);
    }
    out_off_ += took;
    bytes_out_ += took;
  }
  out_.clear();
  out_off_ = 0;
  if (out_.capacity() > kKeptQueue) {
    std::string().swap(out_);
  }
  return true;
}

void StreamIo::shutdownWrite() {
  if (!shut_ && tunnel_ != nullptr) {
    tunnel_->conn().shutdownWrite(id_);
    shut_ = true;
  }
}

TunnelConnection* StreamIo::close(bool reset) {
  TunnelConnection* tunnel = tunnel_;
  if (tunnel == nullptr) {
    return nullptr;
  }
  hbone::HboneConnection& conn = tunnel->conn();
  if (reset || failed_) {
    conn.reset(id_);
  } else {
    conn.discardInput(id_);
    conn.shutdownWrite(id_);
  }
  detach();
  return tunnel;
}

bool StreamIo::hasInput() const {
  if (tunnel_ == nullptr) {
    return false;
  }
  const hbone::HboneConnection& conn = tunnel_->conn();
  return conn.hasStream(id_) && (!conn.peek(id_).empty() || conn.remoteEnded(id_));
}

void StreamIo::lost(bool clean) {
  tunnel_ = nullptr;  // the tunnel forgot the stream before telling its owner
  if (clean) {
    closed_clean_ = true;
  } else {
    failed_ = true;
  }
}

StreamEnd::StreamEnd(TunnelConnection& tunnel, hbone::StreamId id, std::function<void(int)> respond,
                     std::function<ConnectionTelemetry()> open_report,
                     std::function<void(Event)> on_event)
    : io_(tunnel, id, this),
      respond_(std::move(respond)),
      open_report_(std::move(open_report)),
      on_event_(std::move(on_event)) {}

void StreamEnd::close(bool reset) {
  if (closed_) {
    return;
  }
  closed_ = true;
  reset |= io_.failed();
  if (TunnelConnection* tunnel = io_.close(reset)) {
    tunnel->flush();
  }
  if (telemetry_.open()) {
    telemetry_.close(
        {.bytes_from_source = io_.bytesIn(), .bytes_to_source = io_.bytesOut(), .reset = reset});
  }
}

void StreamEnd::afterPass() {
  if (io_.tunnel() != nullptr) {
    io_.tunnel()->flushSoon();  // with the tunnel's other streams of this round, as StreamBridge
  }
}

void StreamEnd::onAppConnected(bool ok) {
  TunnelConnection* tunnel = io_.tunnel();
  if (tunnel == nullptr) {
    return;
  }
  if (ok) {
    telemetry_ = open_report_();
    respond_(200);  // sent with the relay's pass (afterPass)
    return;
  }
  respond_(503);  // the stream is refused: nothing more to reset
  io_.detach();
  tunnel->flush();
}

void StreamEnd::onTunnelClosed(uint32_t error_code) {
  io_.lost(/*clean=*/error_code == 0);
  on_event_(error_code == 0 ? Event::kReady : Event::kFailed);  // kReady: the end is read next
}

void StreamEnd::onTunnelFailed() {
  io_.lost(/*clean=*/false);
  on_event_(Event::kFailed);
}

void StreamEnd::abort() {
  io_.detach();
  io_.lost(/*clean=*/false);
  on_event_(Event::kFailed);
}

}  // namespace ferry::agent
