// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Copies bytes both ways between two TCP sockets on one event loop: used where no encryption is
// needed (plaintext inbound on 15006, same-node outbound). Each direction has its own bounded
// buffer; a full buffer stops reading its source (backpressure reaches the sender's TCP window),
// EOF on one side becomes shutdown(SHUT_WR) on the other once its bytes are delivered
// (half-close), an error on either side resets both. Both sockets are io::Connections: bytes are
// read into a side's buffer and sent to the other straight from it (no copy in between).

#include <cstdint>
#include <functional>
#include <string_view>

#include "agent/io/connection.h"
#include "agent/io/event_loop.h"
#include "agent/io/sockets.h"
#include "net/byte_buffer.h"

namespace ferry::agent {

struct RelayResult {
  uint64_t bytes_a_to_b = 0;
  uint64_t bytes_b_to_a = 0;
  bool connect_failed = false;
  bool reset = false;
};

// How much a relay holds: bytes per direction before it stops reading, and how long the
// upstream connect may take (--max-buffer-bytes, --connect-timeout-ms).
struct RelayLimits {
  size_t max_buffer = 0;
  uint32_t connect_timeout_ms = 0;
};

class TcpRelay : public Deferred {
 public:
  using DoneCallback = std::function<void(const RelayResult&)>;

  // Takes ownership of both sockets. `b_connecting`: b is a non-blocking connect in progress;
  // nothing is read from a until it completes, and if it fails a is reset. The relay deletes
  // itself (deleteLater) when both directions are done.
  // `a_to_b` / `b_to_a`: bytes already read from a (b) that b (a) gets first (a connection
  // that becomes a tunnel after a handshake read past its end).
  static TcpRelay* start(EventLoop& loop, int a, int b, bool b_connecting, RelayLimits limits,
                         DoneCallback done, std::string_view a_to_b = {},
                         std::string_view b_to_a = {});

  ~TcpRelay() override;
  void abort() { finish(true); }  // resets both sides (a policy change revoked the connection)

 private:
  struct Side {
    Side(TcpRelay* relay, EventLoop& loop, int fd, size_t max)
        : conn(loop, fd, [relay, this](uint32_t events) { relay->onSide(*this, events); }),
          in(max) {}
    Connection conn;
    net::ByteBuffer in;  // bytes read from this side, waiting to be written to the other
    bool read_eof = false;
    uint64_t moved = 0;
  };

  TcpRelay(EventLoop& loop, int a, int b, size_t max_buffer, DoneCallback done);
  void onSide(Side& side, uint32_t events);
  void pump();
  bool readFrom(Side& from);
  bool writeTo(Side& to, Side& from);
  void updateInterest(Side& side);
  void finish(bool reset);
  Side& peer(Side& s) { return &s == &a_ ? b_ : a_; }

  EventLoop& loop_;
  Side a_;
  Side b_;
  bool connecting_ = false;
  bool done_ = false;
  bool connect_failed_ = false;
  EventLoop::TimerId connect_timer_ = 0;
  DoneCallback on_done_;
};

}  // namespace ferry::agent
