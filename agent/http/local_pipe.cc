// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/local_pipe.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

namespace ferry::agent {

// Both sides' state; side i writes flow[i] and reads flow[1 - i].
class PipeCore : public std::enable_shared_from_this<PipeCore> {
 public:
  explicit PipeCore(EventLoop& loop) : loop_(loop) {}

  struct Flow {
    std::string bytes;  // handed over, read from `off`
    size_t off = 0;
    bool ended = false;  // the writer's FIN, after `bytes`
    size_t unread() const { return bytes.size() - off; }
  };

  struct Side {
    std::string queued;  // written by its holder, waiting for room in its flow
    bool shut_requested = false;
    bool closed = false;
    bool done_reading = false;  // read the end or the reset
    bool want_read = true;
    bool report_queued = false;
    bool report_always = false;
    std::function<void()> on_event;
  };

  bool hasInput(int i) const {
    const Side& s = sides_[i];
    const Flow& in = flows_[1 - i];
    return !s.done_reading && (reset_ || in.unread() > 0 || in.ended || sides_[1 - i].closed);
  }

  // Hands side i's queued bytes over, up to the window (all of them when `all`); its FIN after.
  void move(int i, bool all) {
    Side& s = sides_[i];
    Flow& out = flows_[i];
    const size_t room = out.unread() < kPipeWindow ? kPipeWindow - out.unread() : 0;
    const size_t n = all ? s.queued.size() : std::min(room, s.queued.size());
    if (n > 0) {
      if (out.off > 0 && out.off >= out.unread()) {
        out.bytes.erase(0, out.off);  // what was read goes before it outgrows what waits
        out.off = 0;
      }
      out.bytes.append(s.queued, 0, n);
      s.queued.erase(0, n);
      report(1 - i, /*always=*/false);
    }
    if (s.queued.empty() && s.shut_requested && !out.ended) {
      out.ended = true;
      report(1 - i, /*always=*/false);
    }
  }

  void report(int i, bool always) {
    Side& s = sides_[i];
    s.report_always |= always;
    if (s.report_queued || s.closed) {
      return;
    }
    s.report_queued = true;
    loop_.afterBatch([weak = weak_from_this(), i] {
      std::shared_ptr<PipeCore> core = weak.lock();
      if (core == nullptr) {
        return;
      }
      Side& side = core->sides_[i];
      side.report_queued = false;
      const bool always = std::exchange(side.report_always, false);
      if (side.on_event && (always || (side.want_read && core->hasInput(i)))) {
        std::function<void()> fn = side.on_event;  // the holder may rebind from inside
        fn();
      }
    });
  }

  EventLoop& loop_;
  std::array<Flow, 2> flows_;
  std::array<Side, 2> sides_;
  bool reset_ = false;
};

void PipeIo::bind(std::function<void()> on_event) {
  core_->sides_[side_].on_event = std::move(on_event);
}

void PipeIo::queue(std::string_view bytes) {
  core_->sides_[side_].queued.append(bytes);
}

size_t PipeIo::pending() const {
  return core_->sides_[side_].queued.size();
}

Connection::ReadResult PipeIo::read(char* buf, size_t room) {
  using Status = Connection::ReadStatus;
  PipeCore::Side& self = core_->sides_[side_];
  PipeCore::Flow& in = core_->flows_[1 - side_];
  if (core_->reset_) {
    self.done_reading = true;
    return {Status::kError};
  }
  if (in.unread() > 0) {
    const size_t n = std::min(room, in.unread());
    std::memcpy(buf, in.bytes.data() + in.off, n);
    in.off += n;
    if (in.off == in.bytes.size()) {
      in.bytes.clear();
      in.off = 0;
      if (in.bytes.capacity() > kPipeWindow) {
        std::string().swap(in.bytes);
      }
    }
    PipeCore::Side& writer = core_->sides_[1 - side_];
    if (!writer.queued.empty() || writer.shut_requested) {
      core_->report(1 - side_, /*always=*/true);  // room for what it queued
    }
    core_->report(side_, /*always=*/false);  // more may wait behind these bytes
    return {Status::kData, n};
  }
  if (in.ended) {
    self.done_reading = true;
    return {Status::kEof};
  }
  if (core_->sides_[1 - side_].closed) {
    self.done_reading = true;
    return {Status::kError};
  }
  return {Status::kAgain};
}

bool PipeIo::flush() {
  if (closed_ || broken()) {
    return pending() == 0 && !core_->reset_;
  }
  core_->move(side_, /*all=*/false);
  return true;
}

void PipeIo::shutdownWrite() {
  if (closed_) {
    return;
  }
  core_->sides_[side_].shut_requested = true;
  core_->move(side_, /*all=*/false);
}

void PipeIo::close(bool reset) {
  if (closed_) {
    return;
  }
  closed_ = true;
  PipeCore::Side& self = core_->sides_[side_];
  self.on_event = nullptr;
  if (reset) {
    core_->reset_ = true;
  } else {
    // As a socket's close(): what was queued still goes, then the end; what the other side
    // still sends is dropped.
    self.shut_requested = true;
    core_->move(side_, /*all=*/true);
    PipeCore::Flow& in = core_->flows_[1 - side_];
    std::string().swap(in.bytes);
    in.off = 0;
  }
  self.closed = true;
  core_->report(1 - side_, /*always=*/true);
}

void PipeIo::want(bool read) {
  core_->sides_[side_].want_read = read;
  core_->report(side_, /*always=*/false);
}

bool PipeIo::hasInput() const {
  return core_->hasInput(side_);
}

bool PipeIo::broken() const {
  return core_->reset_ || core_->sides_[1 - side_].closed;
}

void PipeIo::reportLater(bool always) {
  core_->report(side_, always);
}

bool PipeLink::start() {
  // What the holder queued goes over now; a failure is reported as a socket's would be.
  if (!io_.flush()) {
    io_.reportLater(/*always=*/true);
  }
  io_.want(/*read=*/true);
  return true;
}

PipePair makePipe(EventLoop& loop) {
  auto core = std::make_shared<PipeCore>(loop);
  return PipePair{.link = std::make_unique<PipeLink>(core, 0),
                  .end = std::make_unique<PipeEnd>(core, 1)};
}

}  // namespace ferry::agent
