// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/relay_end.h"

#include <utility>

namespace ferry::agent {

namespace {
// A send queue that grew past this is given back once it has drained (an idle connection keeps
// no buffer).
constexpr size_t kKeptQueue = 16 * 1024;
}  // namespace

StreamEnd::StreamEnd(TunnelConnection& tunnel, hbone::StreamId id, std::function<void(int)> respond,
                     std::function<ConnectionTelemetry()> open_report,
                     std::function<void(Event)> on_event)
    : tunnel_(&tunnel),
      id_(id),
      respond_(std::move(respond)),
      open_report_(std::move(open_report)),
      on_event_(std::move(on_event)) {
  tunnel.attach(id, this);
}

StreamEnd::~StreamEnd() {
  detach();
}

void StreamEnd::detach() {
  if (tunnel_ != nullptr) {
    tunnel_->detach(id_);
    tunnel_ = nullptr;
  }
}

Connection::ReadResult StreamEnd::read(char* buf, size_t room) {
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
    // reset, and wakes the relay.
    return {Status::kAgain};
  }
  hbone::ReadResult r = conn.read(id_, absl::Span<uint8_t>(reinterpret_cast<uint8_t*>(buf), room));
  if (r.bytes > 0) {
    bytes_in_ += r.bytes;
    return {Status::kData, r.bytes};  // an end behind these bytes is read next time
  }
  return {r.eof ? Status::kEof : Status::kAgain};
}

bool StreamEnd::flush() {
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

void StreamEnd::shutdownWrite() {
  if (!shut_ && tunnel_ != nullptr) {
    tunnel_->conn().shutdownWrite(id_);
    shut_ = true;
  }
}

void StreamEnd::close(bool reset) {
  if (closed_) {
    return;
  }
  closed_ = true;
  reset |= failed_;
  if (tunnel_ != nullptr) {
    TunnelConnection* tunnel = tunnel_;
    hbone::HboneConnection& conn = tunnel->conn();
    if (reset) {
      conn.reset(id_);
    } else {
      // As a socket's close(): the end goes after what was queued, and whatever the client
      // still sends is dropped (with its window credit given back) instead of stalling it.
      conn.discardInput(id_);
      conn.shutdownWrite(id_);
    }
    detach();
    tunnel->flush();
  }
  if (telemetry_.open()) {
    telemetry_.close(
        {.bytes_from_source = bytes_in_, .bytes_to_source = bytes_out_, .reset = reset});
  }
}

bool StreamEnd::hasInput() const {
  if (tunnel_ == nullptr) {
    return false;
  }
  const hbone::HboneConnection& conn = tunnel_->conn();
  return conn.hasStream(id_) && (!conn.peek(id_).empty() || conn.remoteEnded(id_));
}

void StreamEnd::afterPass() {
  if (tunnel_ != nullptr) {
    tunnel_->flush();
  }
}

void StreamEnd::onAppConnected(bool ok) {
  if (tunnel_ == nullptr) {
    return;
  }
  if (ok) {
    telemetry_ = open_report_();
    respond_(200);  // sent with the relay's pass (afterPass)
    return;
  }
  respond_(503);  // the stream is refused: nothing more to reset
  TunnelConnection* tunnel = tunnel_;
  detach();
  tunnel->flush();
}

void StreamEnd::onTunnelClosed(uint32_t error_code) {
  tunnel_ = nullptr;  // the tunnel forgot the stream before telling us
  if (error_code == 0) {
    closed_clean_ = true;
    on_event_(Event::kReady);  // the end is read next
  } else {
    failed_ = true;
    on_event_(Event::kFailed);
  }
}

void StreamEnd::onTunnelFailed() {
  tunnel_ = nullptr;
  failed_ = true;
  on_event_(Event::kFailed);
}

void StreamEnd::abort() {
  detach();
  failed_ = true;
  on_event_(Event::kFailed);
}

}  // namespace ferry::agent
