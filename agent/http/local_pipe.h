// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// An in-process byte pipe between two relays of one worker, for a routed request to an HTTP port
// of a pod on this node: the agent is both the source's routed outbound and the destination's
// inbound, so the routed upstream (PipeLink, an UpstreamLink) and the destination relay's client
// end (PipeEnd, a RelayEnd of http_inbound.h) hand bytes over in memory, where a socketpair took
// a send, a recv and an epoll event per direction and message.
//
// It behaves as a socket pair would, as each holder sees it:
//  - a write waits in its side's queue while the other side holds kPipeWindow unread bytes, and
//    goes once it reads (backpressure both ways);
//  - shutdownWrite() is the FIN after what was queued; close(false) is a socket's close(): what
//    was queued still goes, then the end, and what the other side still sends is dropped (its
//    writes fail); close(true) is a reset: the other side's reads fail, queued bytes or not;
//  - each side hears of bytes, room, the end or a reset after the current batch
//    (EventLoop::afterBatch), and again while it wants to read and bytes wait, as from a
//    level-triggered socket: a holder never runs inside the other holder's call.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "agent/http/relay_end.h"
#include "agent/http/upstream_link.h"
#include "agent/io/event_loop.h"

namespace ferry::agent {

inline constexpr size_t kPipeWindow = 256 * 1024;

class PipeCore;

// One side's I/O, shared by both kinds of end. Closed with a reset when destroyed open.
class PipeIo {
 public:
  PipeIo(std::shared_ptr<PipeCore> core, int side) : core_(std::move(core)), side_(side) {}
  ~PipeIo() { close(/*reset=*/true); }
  PipeIo(const PipeIo&) = delete;
  PipeIo& operator=(const PipeIo&) = delete;

  void bind(std::function<void()> on_event);
  Connection::ReadResult read(char* buf, size_t room);
  void queue(std::string_view bytes);
  bool flush();
  size_t pending() const;
  void shutdownWrite();
  void close(bool reset);
  void want(bool read);
  bool hasInput() const;
  // The other side is gone (closed, or either reset): nothing more can be sent.
  bool broken() const;
  // Tells this side's holder after the batch (`always`), or only if it wants to read and
  // something waits.
  void reportLater(bool always);

 private:
  std::shared_ptr<PipeCore> core_;
  int side_;
  bool closed_ = false;
};

// A new pipe: the routed outbound's side and the destination relay's side.
struct PipePair {
  std::unique_ptr<class PipeLink> link;
  std::unique_ptr<class PipeEnd> end;
};
PipePair makePipe(EventLoop& loop);

// A RelayEnd (`Base`: RelayEnd itself, or UpstreamLink) that is one side of a pipe.
template <class Base>
class PipeSide : public Base {
 public:
  PipeSide(std::shared_ptr<PipeCore> core, int side) : io_(std::move(core), side) {}

  Connection::ReadResult read(char* buf, size_t room) override { return io_.read(buf, room); }
  void queue(std::string_view bytes) override { io_.queue(bytes); }
  bool flush() override { return io_.flush(); }
  size_t pending() const override { return io_.pending(); }
  void shutdownWrite() override { io_.shutdownWrite(); }
  void close(bool reset) override { io_.close(reset); }
  void want(bool read, bool /*write*/) override { io_.want(read); }
  bool hasInput() const override { return io_.hasInput(); }

 protected:
  PipeIo io_;
};

class PipeLink final : public PipeSide<UpstreamLink> {
 public:
  PipeLink(std::shared_ptr<PipeCore> core, int side) : PipeSide(std::move(core), side) {
    io_.bind([this] { notify(); });
  }

  bool start() override;
  bool brokenWhileIdle() const override { return io_.broken() || io_.hasInput(); }
};

class PipeEnd final : public PipeSide<RelayEnd> {
 public:
  using PipeSide::PipeSide;

  // Who hears of this side (the relay).
  void bind(std::function<void()> on_event) { io_.bind(std::move(on_event)); }
  // The app could not be reached: the routed side sees a reset before any byte, as from a
  // refused connect.
  void onAppConnected(bool ok) override {
    if (!ok) {
      io_.close(/*reset=*/true);
    }
  }
};

}  // namespace ferry::agent
