// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/http_mirror.h"

#include <sys/epoll.h>

#include <chrono>
#include <optional>
#include <string_view>
#include <utility>

#include "agent/http/upstream_pool.h"
#include "agent/io/connection.h"
#include "agent/io/sockets.h"
#include "http/http1_parser.h"
#include "log/log.h"

namespace ferry::agent {
namespace {

using routing::Outcome;
using Event = http::Http1Parser::Event;

constexpr size_t kReadChunk = 16 * 1024;

void bump(routing::RouteStats* stats, std::atomic<uint64_t> routing::RouteStats::*field) {
  if (stats != nullptr) {
    (stats->*field).fetch_add(1, std::memory_order_relaxed);
  }
}

// One copy on its upstream connection, from the first byte written to the last one read.
// Owned by the event loop; frees itself through deleteLater.
class MirrorRequest : public Deferred {
 public:
  MirrorRequest(WorkerContext& ctx, MirrorCopy copy) : ctx_(ctx), copy_(std::move(copy)) {
    resp_.setRequestContext(copy_.head_request, false);
    ctx_.shared.mirrors_in_flight.fetch_add(1, std::memory_order_relaxed);
  }
  ~MirrorRequest() override {
    ctx_.shared.mirrors_in_flight.fetch_sub(1, std::memory_order_relaxed);
  }

  // False when the copy was dropped (counted; the caller frees it).
  bool start() {
    routing::PickFailure failure = routing::PickFailure::kNone;
    pick_ = copy_.cluster->cluster.pick(ctx_.rng, absl::Now(), &failure);
    if (!pick_) {
      countMirrorDrop(copy_.stats, failure == routing::PickFailure::kOverflow
                                       ? &routing::RouteStats::mirror_dropped_overload
                                       : &routing::RouteStats::mirror_dropped_unavailable);
      return false;
    }
    // A connection slot now or never: a copy does not queue behind the mirror's limits.
    auto admission = copy_.cluster->limiter.acquire([] {});
    if (admission.admit != routing::ConnectionLimiter::Admit::kConnect) {
      if (admission.ticket != nullptr) {
        copy_.cluster->limiter.cancel(admission.ticket);
      }
      endPick(Outcome::kSuccess);  // no connection tried: not the endpoint's doing
      countMirrorDrop(copy_.stats, &routing::RouteStats::mirror_dropped_overload);
      return false;
    }
    slot_ = std::make_unique<ConnectionSlot>(copy_.cluster);
    if (!connect()) {
      endPick(Outcome::kConnectFailure);
      slot_.reset();
      countMirrorDrop(copy_.stats, &routing::RouteStats::mirror_dropped_unavailable);
      return false;
    }
    bump(copy_.stats, &routing::RouteStats::mirrors);
    timer_ = ctx_.loop.addTimer(
        std::chrono::milliseconds(std::max<int64_t>(1, absl::ToInt64Milliseconds(copy_.timeout))),
        [this] {
          timer_ = 0;
          finish(Outcome::kTimeout, false);
        });
    write();
    return true;
  }

  void onEvents() {
    if (done_) {
      return;
    }
    if (!write()) {
      return;
    }
    read();  // nothing there reads as kAgain
  }

 private:
  bool connect() {
    const routing::EndpointRef& e = pick_->endpoint;
    const Destination dest = endpointDestination(*copy_.state, e);
    UpstreamPool& pool = upstreamPool(ctx_);
    const std::string key = UpstreamPool::keyOf(copy_.cluster_id, *copy_.source, dest.ip, e.port);
    auto conn = pool.acquire(key, copy_.source, *copy_.state, dest, copy_.source_ip);
    if (!conn.ok()) {
      LOG_WARN_EVERY_SECOND("request mirror to ", copy_.cluster_id, ": ", conn.status().ToString());
      return false;
    }
    conn_ = *std::move(conn);
    UpstreamLink& link = *conn_.link;
    link.bind([this] { onEvents(); });
    link.queueOwned(std::exchange(copy_.request, {}));  // the body's memory goes once it is sent
    if (!link.start()) {
      UpstreamPool::discard(ctx_.loop, std::move(conn_.link), /*reset=*/true);
      conn_ = UpstreamConn{};
      return false;
    }
    return true;
  }

  // False when the copy ended here.
  bool write() {
    if (!conn_.link->flush()) {
      finish(Outcome::kConnectFailure, false);
      return false;
    }
    conn_.link->want(/*read=*/true, /*write=*/false);
    return true;
  }

  void read() {
    char buf[kReadChunk];
    Connection::ReadResult r = conn_.link->read(buf, sizeof(buf));
    if (r.status == Connection::ReadStatus::kAgain) {
      return;
    }
    if (r.status != Connection::ReadStatus::kData) {
      const bool complete = r.status == Connection::ReadStatus::kEof &&
                            resp_.finish().type == Event::Type::kMessageComplete && status_ >= 200;
      finish(complete ? Outcome::kSuccess : Outcome::kReset, false);
      return;
    }
    answered_ = true;
    std::string_view input(buf, r.bytes);
    while (!done_) {
      Event ev = resp_.next(input);
      switch (ev.type) {
        case Event::Type::kNeedMore:
          return;
        case Event::Type::kHead:
          status_ = resp_.head().status;
          if (status_ == 101) {
            finish(Outcome::kReset, false);  // a switch of protocols nobody asked for
            return;
          }
          break;
        case Event::Type::kBody:
          break;  // the answer is thrown away
        case Event::Type::kMessageComplete:
          if (status_ >= 200) {
            finish(status_ >= 500 ? Outcome::kHttp5xx : Outcome::kSuccess,
                   resp_.head().keep_alive && input.empty());
            return;
          }
          break;  // an interim response: the final one follows
        case Event::Type::kError:
          finish(Outcome::kReset, false);
          return;
      }
    }
  }

  void endPick(Outcome outcome) {
    if (pick_) {
      copy_.cluster->cluster.done(*pick_, outcome, absl::Now());
      pick_.reset();
    }
  }

  // `outcome` to the mirror's cluster; the connection back to the pool when `reusable`.
  void finish(Outcome outcome, bool reusable) {
    done_ = true;
    if (timer_ != 0) {
      ctx_.loop.cancelTimer(timer_);
      timer_ = 0;
    }
    const bool whole = outcome == Outcome::kSuccess || outcome == Outcome::kHttp5xx;
    if (!whole) {
      bump(copy_.stats, &routing::RouteStats::mirror_errors);
      // A fresh connection that never answered most likely never connected.
      if (outcome == Outcome::kReset && !answered_ && conn_.responses == 0) {
        outcome = Outcome::kConnectFailure;
      }
    }
    endPick(outcome);
    if (reusable) {
      ++conn_.responses;
      upstreamPool(ctx_).put(std::move(conn_));
    } else {
      UpstreamPool::discard(ctx_.loop, std::move(conn_.link), /*reset=*/true);
    }
    conn_ = UpstreamConn{};
    slot_.reset();
    ctx_.loop.deleteLater(std::unique_ptr<Deferred>(this));
  }

  WorkerContext& ctx_;
  MirrorCopy copy_;
  std::optional<routing::Cluster::Pick> pick_;
  std::unique_ptr<ConnectionSlot> slot_;
  UpstreamConn conn_;  // its link, pool key and use count
  http::Http1Parser resp_{http::Http1Parser::Kind::kResponse};
  int status_ = 0;
  bool answered_ = false;
  bool done_ = false;
  EventLoop::TimerId timer_ = 0;
};

}  // namespace

void countMirrorDrop(routing::RouteStats* stats,
                     std::atomic<uint64_t> routing::RouteStats::*field) {
  bump(stats, field);
}

void sendMirror(WorkerContext& ctx, MirrorCopy copy) {
  if (ctx.shared.mirrors_in_flight.load(std::memory_order_relaxed) >= kMaxMirrorsInFlight) {
    LOG_WARN_EVERY_SECOND("request mirror to ", copy.cluster_id, ": ", kMaxMirrorsInFlight,
                          " copies in flight already, this one is dropped");
    bump(copy.stats, &routing::RouteStats::mirror_dropped_overload);
    return;
  }
  auto mirror = std::make_unique<MirrorRequest>(ctx, std::move(copy));
  if (mirror->start()) {
    (void)mirror.release();  // the loop owns it now; finish() hands it to deleteLater
  }
}

}  // namespace ferry::agent
