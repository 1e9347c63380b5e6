// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The routed outbound's connection (issue 20 point 2), shared by its two files: the client side
// (http_outbound.cc: HTTP/1.1 requests parsed one at a time, answers written back, the exchange's
// end) and the upstream side (http_outbound_upstream.cc: each try's upstream link, the response
// relayed back with backpressure, the switch to a WebSocket tunnel). What to do with a request
// is decided by decideRoute() (route_decision.h); tries, timeouts and retries are
// UpstreamAttempts' (upstream_attempts.h), which calls back through AttemptIo. Internal to the
// routed outbound: others use http_outbound.h.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "agent/http/http_mirror.h"
#include "agent/http/http_outbound.h"
#include "agent/http/loop_clock.h"
#include "agent/http/route_decision.h"
#include "agent/http/routed_exchange.h"
#include "agent/http/upstream_attempts.h"
#include "agent/http/upstream_pool.h"
#include "agent/io/connection.h"
#include "agent/state/route_state.h"
#include "agent/telemetry/telemetry.h"
#include "agent/worker_context.h"
#include "http/http1_parser.h"

namespace ferry::agent::routed {

inline constexpr size_t kReadChunk = 16 * 1024;
// Bytes waiting for one side before the other side is no longer read (backpressure).
inline constexpr size_t kMaxPendingOut = 256 * 1024;
// A response that is retried is read to its end (and the connection kept) up to this size;
// beyond it, or when it ends with the connection, the connection is closed instead.
inline constexpr uint64_t kMaxDrainBytes = 64 * 1024;

using Event = http::Http1Parser::Event;
using Exchange = RoutedExchange;

// A mirrored body is the one buffered for retries: nothing is held for mirroring alone.
static_assert(kMaxMirrorBodyBytes == kMaxRetryBodyBytes);

class HttpOutbound : public Deferred, private AttemptIo {
 public:
  HttpOutbound(WorkerContext& ctx, RoutedClient who, int fd)
      : ctx_(ctx),
        who_(std::move(who)),
        client_(ctx.loop, fd, [this](uint32_t events) { onClient(events); }),
        clock_(ctx.loop),
        attempts_(clock_, *this, ctx.rng) {}

  void start();

 private:
  // ---- client side ---------------------------------------------------------------------------

  void onClient(uint32_t events);
  bool wantRead() const;
  // A streamed body is held in x_.body while its only try waits to start (a connection slot,
  // a fault delay), then in the link's queue until the backend takes it: either way, once
  // kMaxPendingOut of it is held the client is no longer read (issue 8). connect() moves
  // x_.body to the link, and writeUpstream() resumes parsing once that has drained.
  bool streamBlocked() const;
  void readClient();
  void parseRequests();
  void onRequestHead();
  void onRequestBody(std::string_view data);
  void onRequestComplete();
  void handOverToH2();
  void sendLocal(int status, std::string_view body, bool close);
  void writeClient();
  void updateInterest();

  // ---- upstream side (AttemptIo) -------------------------------------------------------------

  void dispatch();
  const char* connect(const routing::EndpointRef& endpoint) override;
  void release(bool reusable) override;
  void answer(int status, std::string_view text, const char* flags) override;
  void reset() override { closeAll(true); }
  bool retriable() const override { return x_.body_complete && !x_.streaming && !closed_; }

  // Runs on whichever worker freed the slot: only tells this one's loop.
  std::function<void()> grantCallback() override;
  void wake() override;
  void onUpstream();

  // False when the try failed (and was dealt with).
  bool writeUpstream();
  void readUpstream();

  // False when the try ended here (a retry, or a refusal).
  bool onResponseHead();

  // The backend accepted a WebSocket handshake (101): both connections become one tunnel
  // (agent/http/websocket_tunnel.h). The exchange is reported as answered 101.
  void becomeTunnel(std::string_view rest);
  void completeResponse(bool reusable);

  // The upstream connection closed or failed before the response was complete.
  void upstreamGone();

  // ---- the exchange's end --------------------------------------------------------------------

  void finishExchange();
  void report();
  void closeAll(bool reset);

  WorkerContext& ctx_;
  RoutedClient who_;
  Connection client_;
  std::string in_;  // client bytes not parsed yet
  bool in_eof_ = false;
  bool in_request_ = false;
  bool paused_ = false;
  bool parsing_ = false;
  bool close_after_ = false;
  bool closed_ = false;
  bool seen_http1_ = false;  // the first bytes were not the h2 preface
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for posted grants
  http::Http1Parser req_{http::Http1Parser::Kind::kRequest};
  Exchange x_;
  LoopClock clock_;
  UpstreamAttempts attempts_;
};

}  // namespace ferry::agent::routed
