// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// One end of the inbound HTTP relay (http_inbound.h), as the relay sees it: bytes to read, bytes
// queued to write, a half-close, a close. The client's end is its socket (plaintext inbound) or
// its HBONE stream read and written in place (StreamEnd), so HBONE inbound HTTP needs no
// socketpair and no second relay between the tunnel and the HTTP filter; the app's end is its
// socket.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "agent/io/connection.h"
#include "agent/proxy/hbone_tunnel.h"
#include "agent/telemetry/telemetry.h"
#include "hbone/connection.h"

namespace ferry::agent {

class RelayEnd {
 public:
  virtual ~RelayEnd() = default;
  // One read of at most `room` bytes.
  virtual Connection::ReadResult read(char* buf, size_t room) = 0;
  // Queues behind what waits; nothing goes before flush().
  virtual void queue(std::string_view bytes) = 0;
  // Hands over what the end takes now; false when it is gone.
  virtual bool flush() = 0;
  virtual size_t pending() const = 0;
  // FIN (END_STREAM) once, after what was queued has gone.
  virtual void shutdownWrite() = 0;
  // Cleanly (what is queued still goes) or with a reset.
  virtual void close(bool reset) = 0;
  // What the relay wants to hear of (a socket's epoll interest; a stream always reports).
  virtual void want(bool read, bool write) = 0;
  // Holds input that no event will announce again (a stream reports data once, when its buffer
  // turns non-empty): the relay reads it without waiting for one.
  virtual bool hasInput() const { return false; }
  // Called when the relay's pass over its ends is over (a stream sends what it produced).
  virtual void afterPass() {}
  // The app's connect completed (`ok`) or failed; a stream is answered here.
  virtual void onAppConnected(bool /*ok*/) {}
};

// A RelayEnd (`Base`: RelayEnd itself, or a routed upstream's UpstreamLink) on a socket.
template <class Base>
class SocketSide : public Base {
 public:
  SocketSide(EventLoop& loop, int fd, std::function<void(uint32_t)> on_events)
      : conn_(loop, fd, std::move(on_events)) {}

  Connection::ReadResult read(char* buf, size_t room) override { return conn_.read(buf, room); }
  void queue(std::string_view bytes) override { conn_.queue(bytes); }
  bool flush() override { return conn_.flush(); }
  size_t pending() const override { return conn_.pending(); }
  void shutdownWrite() override { conn_.shutdownWrite(); }
  void close(bool reset) override { conn_.close(reset); }
  void want(bool read, bool write) override { conn_.want(read, write); }

 protected:
  Connection conn_;
};

class SocketEnd final : public SocketSide<RelayEnd> {
 public:
  using SocketSide::SocketSide;
  int fd() const { return conn_.fd(); }
  // Registers with the loop (before any event can come).
  void watch(bool read, bool write) { (void)conn_.watch(read, write); }
};

// One HBONE stream of a TunnelConnection read and written in place, for an end that stands for
// a socket: the inbound relay's client end (StreamEnd) and a routed upstream (StreamLink,
// upstream_link.h). Reads consume the stream's buffer, which is what credits the peer's window;
// writes are bounded by the stream's send buffer. The owner sends what this produced by flushing
// the tunnel, and calls lost() when the tunnel tells it the stream is gone.
class StreamIo {
 public:
  // Attaches `owner` to stream `id` of `tunnel`.
  StreamIo(TunnelConnection& tunnel, hbone::StreamId id, TunnelStream* owner);
  ~StreamIo() { detach(); }
  StreamIo(const StreamIo&) = delete;
  StreamIo& operator=(const StreamIo&) = delete;

  // As a socket's recv(): data, kAgain, the end (kEof after a clean close), or kError.
  Connection::ReadResult read(char* buf, size_t room);
  void queue(std::string_view bytes) { out_.append(bytes); }
  // False when the stream is gone.
  bool flush();
  size_t pending() const { return out_.size() - out_off_; }
  void shutdownWrite();
  // Cleanly (as a socket's close(): the end after what was queued, what the peer still sends
  // dropped with its window credit given back) or with a reset; leaves the tunnel. The tunnel
  // it left (to be flushed), or null.
  TunnelConnection* close(bool reset);
  bool hasInput() const;
  // The stream left the tunnel (kClosed: `clean` after an end; a reset, a refusal, the
  // connection's loss: not).
  void lost(bool clean);
  void detach();

  TunnelConnection* tunnel() const { return tunnel_; }
  bool failed() const { return failed_; }
  uint64_t bytesIn() const { return bytes_in_; }
  uint64_t bytesOut() const { return bytes_out_; }

 private:
  TunnelConnection* tunnel_;  // null once the stream left it
  hbone::StreamId id_;
  std::string out_;
  size_t out_off_ = 0;
  bool closed_clean_ = false;  // the stream ended cleanly (read as the end)
  bool failed_ = false;        // reset, refused, revoked, or its connection went
  bool shut_ = false;
  uint64_t bytes_in_ = 0;   // read from the stream
  uint64_t bytes_out_ = 0;  // written to the stream
};

// The client's HBONE stream `id` on `tunnel` (inbound, accepted for an HTTP port and not yet
// answered). The stream is answered once the app's connect completes: 200, with its TCP report
// opened (closed with the stream's byte counts), or 503.
class StreamEnd final : public RelayEnd, public TunnelStream {
 public:
  enum class Event { kReady, kFailed };

  // `respond`: the stream's HBONE answer; `open_report`: its TCP report, opened at the 200;
  // `on_event`: the stream has something for the relay (kReady) or is gone with an error.
  StreamEnd(TunnelConnection& tunnel, hbone::StreamId id, std::function<void(int)> respond,
            std::function<ConnectionTelemetry()> open_report, std::function<void(Event)> on_event);
  ~StreamEnd() override = default;

  // RelayEnd
  Connection::ReadResult read(char* buf, size_t room) override { return io_.read(buf, room); }
  void queue(std::string_view bytes) override { io_.queue(bytes); }
  bool flush() override { return io_.flush(); }
  size_t pending() const override { return io_.pending(); }
  void shutdownWrite() override { io_.shutdownWrite(); }
  void close(bool reset) override;
  void want(bool, bool) override {}
  bool hasInput() const override { return io_.hasInput(); }
  void afterPass() override;
  void onAppConnected(bool ok) override;

  // TunnelStream
  void onTunnelReadable() override { on_event_(Event::kReady); }
  void onTunnelWritable() override { on_event_(Event::kReady); }
  void onTunnelClosed(uint32_t error_code) override;
  void onTunnelFailed() override;
  void abort() override;

 private:
  StreamIo io_;
  std::function<void(int)> respond_;
  std::function<ConnectionTelemetry()> open_report_;
  std::function<void(Event)> on_event_;
  ConnectionTelemetry telemetry_;
  bool closed_ = false;
};

}  // namespace ferry::agent
