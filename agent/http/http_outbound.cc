// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/http_outbound.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/http/http_messages.h"
#include "agent/http/http_mirror.h"
#include "agent/http/upstream_pool.h"
#include "agent/log.h"
#include "agent/proxy/outbound.h"
#include "agent/state/route_state.h"
#include "agent/telemetry/http_telemetry.h"
#include "agent/telemetry/telemetry.h"
#include "agent/telemetry/telemetry_peers.h"
#include "http/authority.h"
#include "http/http1_parser.h"
#include "http/path.h"
#include "http/request_view.h"

namespace ferry::agent {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
// Bytes waiting for one side before the other side is no longer read (backpressure).
constexpr size_t kMaxPendingOut = 256 * 1024;
// A response that is retried is read to its end (and the connection kept) up to this size;
// beyond it, or when it ends with the connection, the connection is closed instead.
constexpr uint64_t kMaxDrainBytes = 64 * 1024;

using routing::Outcome;
using Event = http::Http1Parser::Event;

// A mirrored body is the one buffered for retries: nothing is held for mirroring alone.
static_assert(kMaxMirrorBodyBytes == kMaxRetryBodyBytes);

std::chrono::milliseconds toMs(absl::Duration d) {
  return std::chrono::milliseconds(std::max<int64_t>(0, absl::ToInt64Milliseconds(d)));
}

class HttpOutbound;

// The loop's handler for one upstream connection while a request uses it. Detached and freed
// through deleteLater: an event for its fd may still be in the loop's current batch.
struct UpstreamLink : public EventHandler, public Deferred {
  HttpOutbound* owner = nullptr;
  void onEvents(uint32_t events) override;
};

// One request/response exchange (one at a time per client connection: later pipelined
// requests wait in the input buffer).
struct Exchange {
  bool active = false;
  std::shared_ptr<const RoutingView> view;  // held to the end: a route change spares it
  std::shared_ptr<const WorkloadState> state;
  const routing::CompiledRule* rule = nullptr;
  routing::RouteStats* stats = nullptr;
  std::shared_ptr<BackendCluster> cluster;  // held: connection slots release into it
  std::string cluster_id;                   // "ns/name:port", the upstream pool's key prefix
  model::ObjectKey backend_service;
  int local_status = 0;  // answered here once the request is read (404, fault abort...)
  std::string local_body;
  std::string local_location;        // RequestRedirect: the local answer is this redirect
  http::HeaderEdits response_edits;  // ResponseHeaderModifier of the rule and the backend
  std::string method;
  bool head_request = false;
  bool keep_alive = true;
  std::string head;  // the forwarded request head
  std::string body;  // wire bytes, while buffered for retries
  bool body_complete = false;
  bool streaming = false;  // body beyond kMaxRetryBodyBytes: forwarded as it comes, one try
  bool dispatched = false;
  bool budget_started = false;
  std::optional<absl::Duration> delay;
  uint32_t tries = 0;
  EventLoop::TimerId overall_timer = 0, try_timer = 0, wait_timer = 0;
  // The current try.
  UpstreamLink* link = nullptr;
  UpstreamConn conn;
  std::optional<routing::Cluster::Pick> pick;
  routing::ConnectionLimiter::Ticket ticket;  // waiting for a connection slot
  std::unique_ptr<ConnectionSlot> slot;       // while this try has a connection
  bool retry_try = false;                     // holds a retry-budget slot
  std::string up_out;
  size_t up_off = 0;
  std::unique_ptr<http::Http1Parser> resp;
  bool resp_bytes = false;    // the backend sent something on this try
  bool resp_started = false;  // the final response head went to the client
  int status = 0;
  // Set while a response that will be retried is read to its end: the try's outcome.
  std::optional<Outcome> draining;
  uint64_t drained = 0;
  // For the source-side report (reporter="source"), once per request.
  std::chrono::steady_clock::time_point started;
  std::string path, authority;
  uint64_t request_bytes = 0;   // body bytes from the client
  uint64_t response_bytes = 0;  // body bytes to the client
  int answered = 0;             // the status the client got; 0: none (connection reset)
  const char* flags = "";       // Envoy's response flags for a local answer
  std::optional<routing::EndpointRef> endpoint;  // of the last try
  bool reported = false;
  // Tracing: the traceparent received and our client span (set once the head is parsed).
  std::string incoming_traceparent;
  std::optional<trace::TraceContext> trace;
  std::string upstream_cluster;      // Istio's "outbound|<port>||<service host>"
  std::optional<MirrorCopy> mirror;  // RequestMirror: sent once the request is read whole
};

class HttpOutbound : public EventHandler, public Deferred {
 public:
  HttpOutbound(WorkerContext& ctx, std::shared_ptr<const LocalPod> pod, model::ObjectKey service,
               std::string vip, uint16_t port, std::string source_ip, int fd)
      : ctx_(ctx),
        pod_(std::move(pod)),
        service_(std::move(service)),
        vip_(std::move(vip)),
        port_(port),
        source_ip_(std::move(source_ip)),
        fd_(fd) {}

  void start() {
    LOG_DEBUG("routed outbound from ", pod_->info.name, " to ", service_.ns, "/", service_.name,
              ":", port_);
    ctx_.stats.inc(ctx_.stats.connections_active);
    interest_ = EPOLLIN;
    if (!ctx_.loop.add(fd_, interest_, this).ok()) {
      closeAll(true);
    }
  }

  void onEvents(uint32_t events) override {
    if (closed_) {
      return;
    }
    if (events & EPOLLERR) {
      closeAll(true);
      return;
    }
    if (wantRead()) {
      readClient();
    }
    if (!closed_) {
      writeClient();
    }
  }

  void onUpstream(uint32_t /*events*/) {
    if (closed_ || x_.link == nullptr) {
      return;
    }
    if (!writeUpstream()) {
      return;
    }
    if (x_.link != nullptr && out_.size() - out_off_ < kMaxPendingOut) {
      readUpstream();
    }
    if (!closed_) {
      writeClient();
    }
  }

 private:
  // ---- client side ---------------------------------------------------------------------------

  bool wantRead() const {
    return !closed_ && !in_eof_ && !close_after_ && !paused_ && in_.size() < kMaxPendingOut &&
           out_.size() - out_off_ < kMaxPendingOut && !streamBlocked();
  }
  // A streamed body is held in x_.body while its only try waits to start (a connection slot,
  // a fault delay), then in x_.up_out until the backend takes it: either way, once
  // kMaxPendingOut of it is held the client is no longer read (issue 8). useConnection() moves
  // x_.body to x_.up_out, and writeUpstream() resumes parsing once that has drained.
  bool streamBlocked() const {
    return x_.streaming && x_.body.size() + (x_.up_out.size() - x_.up_off) >= kMaxPendingOut;
  }

  void readClient() {
    char buf[kReadChunk];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        closeAll(true);
      }
      return;
    }
    if (n == 0) {
      in_eof_ = true;
      if (in_request_) {
        closeAll(true);  // the request was cut short: nothing sensible to answer
        return;
      }
      if (!x_.active) {
        close_after_ = true;
      }
      return;
    }
    in_.append(buf, static_cast<size_t>(n));
    parseRequests();
  }

  void parseRequests() {
    if (parsing_) {
      return;  // finishExchange() from inside the loop below: the loop goes on by itself
    }
    parsing_ = true;
    // next() is called until it needs more bytes, even with no input left: a message whose head
    // ended the input completes on the following call.
    while (!closed_ && !paused_ && !close_after_ && !streamBlocked()) {
      std::string_view input(in_);
      Event ev = req_.next(input);
      const size_t consumed = in_.size() - input.size();
      switch (ev.type) {
        case Event::Type::kHead:
          onRequestHead();
          break;
        case Event::Type::kBody:
          onRequestBody(ev.data);
          break;
        case Event::Type::kMessageComplete:
          onRequestComplete();
          break;
        case Event::Type::kError:
          in_.clear();
          if (x_.active) {
            closeAll(true);  // mid-body: the request can no longer be finished
          } else {
            sendLocal(req_.error().status, req_.error().reason, /*close=*/true);
          }
          parsing_ = false;
          return;
        case Event::Type::kNeedMore:
          break;
      }
      if (closed_) {
        parsing_ = false;
        return;
      }
      in_.erase(0, consumed);
      if (ev.type == Event::Type::kNeedMore) {
        break;
      }
    }
    parsing_ = false;
  }

  void onRequestHead() {
    in_request_ = true;
    x_ = Exchange{};
    x_.active = true;
    const http::MessageHead& head = req_.head();
    x_.method = std::string(head.method);
    x_.started = std::chrono::steady_clock::now();
    x_.path = std::string(head.target);
    x_.authority = std::string(head.host);
    x_.head_request = head.method == "HEAD";
    x_.keep_alive = head.keep_alive;
    if (head.upgrade || head.method == "CONNECT") {
      // A routed service carries requests; a tunnel would bypass routing for good.
      local(501, "upgrade and CONNECT are not supported on a routed service\n", "DPE");
      x_.keep_alive = false;
      return;
    }
    auto target = http::parseRequestTarget(head.method, head.target, http::PathOptions{});
    if (!target.ok()) {
      local(400, "bad request target\n", "DPE");
      x_.keep_alive = false;
      return;
    }
    // The same request-target rules as the inbound filter: the absolute-form authority wins
    // over Host, no authority at all is a 400, and Host is forwarded as the one matched.
    auto authority = http::requestAuthority(head, *target);
    if (!authority.ok()) {
      local(400, absl::StrCat(authority.status().message(), "\n"), "DPE");
      x_.keep_alive = false;
      return;
    }
    x_.authority = *std::move(authority);
    std::vector<http::Header> fields;
    http::fieldsWithAuthority(head.headers, x_.authority, fields);
    http::RequestView view;
    view.protocol =
        head.version_minor == 0 ? http::HttpProtocol::kHttp10 : http::HttpProtocol::kHttp11;
    view.method = head.method;
    view.path = target->path;
    view.query = target->query;
    view.authority = x_.authority;
    view.headers = fields;
    if (ctx_.shared.telemetry->spanExporter() != nullptr) {
      // A client span of our own; without export the destination's agent starts the trace.
      x_.incoming_traceparent = view.headerJoined("traceparent").value_or("");
      x_.trace = forwardedTrace(x_.incoming_traceparent, ctx_.shared.telemetry->sampler());
    }
    x_.view = ctx_.shared.routing->current();
    x_.state = ctx_.shared.workloads->current();
    x_.rule = x_.view->table ? x_.view->table->match(service_, port_, view) : nullptr;
    if (x_.rule == nullptr) {
      local(404, "no route matched\n", "NR");
      return;
    }
    x_.stats = x_.view->routeStats(x_.rule->routeName());
    count(&routing::RouteStats::requests);
    routing::FaultAction fault = x_.rule->fault(ctx_.rng);
    if (fault.abort_status) {
      count(&routing::RouteStats::faults_injected);
      local(*fault.abort_status, "fault filter abort\n", "FI");
      return;
    }
    if (fault.delay) {
      count(&routing::RouteStats::faults_injected);
      x_.delay = fault.delay;
    }
    if (const routing::Redirect* redirect = x_.rule->redirect()) {
      x_.local_location = redirect->location({.authority = x_.authority,
                                              .listener_port = port_,
                                              .path = target->path,
                                              .query = target->query,
                                              .has_query = target->has_query});
      local(redirect->status(), "", "");
      return;
    }
    const routing::BackendTarget* backend = x_.rule->pickBackend(ctx_.rng);
    if (backend == nullptr) {
      local(500, "no backend with a weight\n", "NR");
      return;
    }
    const uint16_t backend_port = backend->port != 0 ? backend->port : port_;
    x_.cluster = x_.view->cluster(backend->service, backend_port);
    if (x_.cluster == nullptr) {
      local(503, "no healthy upstream\n", "UH");
      return;
    }
    x_.cluster_id =
        absl::StrCat(backend->service.ns, "/", backend->service.name, ":", backend_port);
    x_.backend_service = backend->service;
    x_.upstream_cluster = absl::StrCat("outbound|", backend_port, "||",
                                       model::Service{.key = backend->service}.hostname());
    // Filters of the rule, then of the chosen backend: header edits both ways, URLRewrite.
    routing::ForwardEdits edits = x_.rule->forwardEdits(*backend, target->path);
    std::string forwarded_target = target->forwarded();
    if (edits.path != target->path) {
      forwarded_target = edits.path;
      if (target->has_query) {
        forwarded_target.append("?").append(target->query);
      }
    }
    const std::string& host = edits.host.empty() ? x_.authority : edits.host;
    if (!edits.host.empty()) {
      fields.clear();
      http::fieldsWithAuthority(head.headers, host, fields);
    }
    if (x_.trace) {
      setForwardedTrace(x_.incoming_traceparent, *x_.trace, edits.request);
    }
    x_.response_edits = std::move(edits.response);
    x_.head = forwardedRequestHead(head.method, fields, forwarded_target, edits.request);
    prepareMirror(head, host, forwarded_target, edits.request);
    x_.cluster->budget.requestStarted();
    x_.budget_started = true;
    if (auto timeout = x_.rule->requestTimeout()) {
      x_.overall_timer = ctx_.loop.addTimer(toMs(*timeout), [this] { onOverallTimeout(); });
    }
    if (head.expect_continue && head.framing != http::BodyFraming::kNone) {
      out_.append("HTTP/1.1 100 Continue\r\n\r\n");  // the body is buffered here, not upstream
    }
  }

  void onRequestBody(std::string_view data) {
    x_.request_bytes += data.size();
    if (x_.local_status != 0) {
      return;  // read and dropped: the answer does not depend on it
    }
    if (x_.streaming && x_.link != nullptr) {
      x_.up_out.append(data);
      (void)writeUpstream();
      return;
    }
    if (x_.streaming) {
      x_.body.append(data);  // the try waits for a connection slot or a fault delay
      return;
    }
    x_.body.append(data);
    if (x_.body.size() > kMaxRetryBodyBytes) {
      x_.streaming = true;  // too big to keep for a retry: forward now, try once
      dispatch();
    }
  }

  void onRequestComplete() {
    in_request_ = false;
    paused_ = true;  // one exchange at a time; pipelined requests wait in in_
    x_.body_complete = true;
    if (x_.local_status != 0) {
      sendLocal(x_.local_status, x_.local_body, !x_.keep_alive);
      finishExchange();
      return;
    }
    std::optional<MirrorCopy> mirror = takeMirror();
    if (!x_.dispatched) {
      dispatch();
    }
    if (mirror) {
      sendMirror(ctx_, *std::move(mirror));  // after the primary's try: it never waits for this
    }
  }

  // RequestMirror: the copy's head is made now, while the received fields (views into the input)
  // are valid; it leaves with its body once the request is read whole (takeMirror).
  void prepareMirror(const http::MessageHead& head, std::string_view authority,
                     std::string_view target, const http::HeaderEdits& edits) {
    const routing::BackendTarget* mirror = x_.rule->mirror();
    if (mirror == nullptr || !x_.rule->shouldMirror()) {
      return;
    }
    const uint16_t port = mirror->port != 0 ? mirror->port : port_;
    auto cluster = x_.view->cluster(mirror->service, port);
    if (cluster == nullptr) {
      countMirrorDrop(x_.stats, &routing::RouteStats::mirror_dropped_unavailable);
      return;
    }
    const std::string shadow = http::shadowAuthority(authority);
    std::vector<http::Header> fields;
    http::fieldsWithAuthority(head.headers, shadow, fields);
    x_.mirror = MirrorCopy{
        .cluster = std::move(cluster),
        .cluster_id = absl::StrCat(mirror->service.ns, "/", mirror->service.name, ":", port),
        .source = pod_,
        .state = x_.state,
        .source_ip = source_ip_,
        .request = forwardedRequestHead(head.method, fields, target, edits),
        .head_request = x_.head_request,
        .timeout = x_.rule->requestTimeout().value_or(kMirrorDefaultTimeout),
        .stats = x_.stats};
  }

  // The request was read whole: its copy, body included, ready to go. A body too big to be kept
  // whole was streamed to the primary backend and is not mirrored.
  std::optional<MirrorCopy> takeMirror() {
    std::optional<MirrorCopy> copy = std::exchange(x_.mirror, std::nullopt);
    if (copy && x_.streaming) {
      countMirrorDrop(x_.stats, &routing::RouteStats::mirror_dropped_body);
      return std::nullopt;
    }
    if (copy) {
      copy->request.append(x_.body);
    }
    return copy;
  }

  void local(int status, std::string body, const char* flags) {
    x_.flags = flags;
    x_.local_status = status;
    x_.local_body = std::move(body);
  }

  void count(std::atomic<uint64_t> routing::RouteStats::*field) {
    if (x_.stats != nullptr) {
      (x_.stats->*field).fetch_add(1, std::memory_order_relaxed);
    }
  }

  void sendLocal(int status, std::string_view body, bool close) {
    if (x_.active) {
      x_.answered = status;
      x_.response_bytes = body.size();
    }
    out_.append(x_.local_location.empty() ? localReply(status, body, close)
                                          : redirectReply(status, x_.local_location, close));
    if (close) {
      close_after_ = true;
    }
  }

  void writeClient() {
    while (out_off_ < out_.size()) {
      ssize_t n = ::send(fd_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
      if (n > 0) {
        out_off_ += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        break;
      }
      closeAll(true);
      return;
    }
    if (out_off_ == out_.size()) {
      out_.clear();
      out_off_ = 0;
      if (close_after_ && !x_.active) {
        closeAll(false);
        return;
      }
    }
    updateInterest();
  }

  void updateInterest() {
    if (closed_) {
      return;
    }
    uint32_t want = (wantRead() ? EPOLLIN : 0u) | (out_off_ < out_.size() ? EPOLLOUT : 0u);
    if (want != interest_) {
      interest_ = want;
      (void)ctx_.loop.modify(fd_, want, this);
    }
    if (x_.link != nullptr) {
      uint32_t up = (out_.size() - out_off_ < kMaxPendingOut ? EPOLLIN : 0u) |
                    (x_.up_off < x_.up_out.size() ? EPOLLOUT : 0u);
      if (up != up_interest_) {
        up_interest_ = up;
        (void)ctx_.loop.modify(x_.conn.fd, up, x_.link);
      }
    }
  }

  // ---- tries -----------------------------------------------------------------------------------

  void dispatch() {
    x_.dispatched = true;
    if (x_.delay) {
      x_.wait_timer = ctx_.loop.addTimer(toMs(*x_.delay), [this] {
        x_.wait_timer = 0;
        startTry();
        writeClient();
      });
      return;
    }
    startTry();
  }

  void startTry() {
    ++x_.tries;
    const absl::Time now = absl::Now();
    routing::PickFailure failure = routing::PickFailure::kNone;
    x_.pick = x_.cluster->cluster.pick(ctx_.rng, now, &failure);
    if (x_.pick) {
      x_.endpoint = x_.pick->endpoint;
    }
    if (!x_.pick) {
      const bool overflow = failure == routing::PickFailure::kOverflow;
      if (overflow) {
        count(&routing::RouteStats::overflows);
      }
      releaseRetrySlot();
      x_.flags = overflow ? "UO" : "UH";
      reply(503, overflow ? "upstream overflow (circuit breaker)\n" : "no healthy upstream\n");
      return;
    }
    // A connection (pooled or new) needs one of the cluster's slots (max_connections, counted
    // agent-wide).
    auto admission = x_.cluster->limiter.acquire(grantCallback());
    switch (admission.admit) {
      case routing::ConnectionLimiter::Admit::kConnect:
        x_.slot = std::make_unique<ConnectionSlot>(x_.cluster);
        connect();
        return;
      case routing::ConnectionLimiter::Admit::kWait:
        x_.ticket = std::move(admission.ticket);  // onConnectionGranted() goes on
        return;
      case routing::ConnectionLimiter::Admit::kOverflow:
        count(&routing::RouteStats::overflows);
        x_.flags = "UO";
        reply(503, "upstream overflow (circuit breaker)\n");
        return;
    }
  }

  std::string upstreamKey() const {
    Destination dest = destinationOf(x_.pick->endpoint);
    return UpstreamPool::keyOf(x_.cluster_id, *pod_, dest.ip, dest.port);
  }

  // Runs on whichever worker freed the slot: only tells this one's loop.
  std::function<void()> grantCallback() {
    EventLoop* loop = &ctx_.loop;
    return [loop, alive = alive_, this] {
      loop->post([alive, this] {
        if (*alive) {
          onConnectionGranted();
        }
      });
    };
  }

  void onConnectionGranted() {
    if (closed_ || x_.ticket == nullptr || !x_.cluster->limiter.claim(x_.ticket)) {
      return;  // a grant for a request that gave up (the slot went on) or already served
    }
    x_.ticket.reset();
    x_.slot = std::make_unique<ConnectionSlot>(x_.cluster);
    connect();
    writeClient();
  }

  // With a connection slot held: an idle keep-alive connection to the endpoint, else a new one.
  void connect() {
    UpstreamPool& pool = upstreamPool(ctx_);
    const std::string key = upstreamKey();
    if (auto idle = pool.take(key)) {
      useConnection(*std::move(idle));
      return;
    }
    Destination dest = destinationOf(x_.pick->endpoint);
    auto opened = pool.open(key, pod_, *x_.state, dest, source_ip_);
    if (!opened.ok()) {
      LOG_WARN_EVERY_SECOND("routed outbound from ", pod_->info.name, ": ",
                            opened.status().ToString());
      failTry(Outcome::kConnectFailure, std::nullopt, false, 503,
              "upstream connect error or disconnect/reset before headers\n");
      return;
    }
    useConnection(*std::move(opened));
  }

  void useConnection(UpstreamConn conn) {
    x_.conn = std::move(conn);
    x_.link = new UpstreamLink;
    x_.link->owner = this;
    x_.up_out = x_.head;
    x_.up_out.append(x_.body);
    x_.up_off = 0;
    if (x_.streaming) {
      x_.body.clear();  // never tried again: no reason to keep it
    }
    x_.resp = std::make_unique<http::Http1Parser>(http::Http1Parser::Kind::kResponse);
    x_.resp->setRequestContext(x_.head_request, false);
    x_.resp_bytes = false;
    x_.status = 0;
    up_interest_ = EPOLLIN | EPOLLOUT;
    if (!ctx_.loop.add(x_.conn.fd, up_interest_, x_.link).ok()) {
      failTry(Outcome::kConnectFailure, std::nullopt, false, 503, "upstream connect error\n");
      return;
    }
    if (auto per_try = x_.rule->backendRequestTimeout()) {
      x_.try_timer = ctx_.loop.addTimer(toMs(*per_try), [this] {
        x_.try_timer = 0;
        failTry(Outcome::kTimeout, 504, true, 504, "upstream request timeout\n");
        writeClient();
      });
    }
  }

  Destination destinationOf(const routing::EndpointRef& e) const {
    return endpointDestination(*x_.state, e);
  }

  // False when the try failed (and was dealt with).
  bool writeUpstream() {
    while (x_.up_off < x_.up_out.size()) {
      ssize_t n = ::send(x_.conn.fd, x_.up_out.data() + x_.up_off, x_.up_out.size() - x_.up_off,
                         MSG_NOSIGNAL);
      if (n > 0) {
        x_.up_off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        break;
      }
      upstreamGone();
      return false;
    }
    if (x_.up_off == x_.up_out.size()) {
      x_.up_out.clear();
      x_.up_off = 0;
      if (x_.streaming && !closed_) {
        parseRequests();  // room again for the rest of a big body
      }
    }
    updateInterest();
    return x_.link != nullptr;
  }

  void readUpstream() {
    char buf[kReadChunk];
    ssize_t n = ::recv(x_.conn.fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        upstreamGone();
      }
      return;
    }
    if (n == 0) {
      Event ev = x_.resp->finish();
      if (ev.type == Event::Type::kMessageComplete && x_.status >= 200) {
        completeResponse(false);  // an until-close body ends here
      } else {
        upstreamGone();
      }
      return;
    }
    x_.resp_bytes = true;
    std::string_view input(buf, static_cast<size_t>(n));
    while (x_.link != nullptr) {
      Event ev = x_.resp->next(input);
      switch (ev.type) {
        case Event::Type::kNeedMore:
          return;
        case Event::Type::kHead:
          if (!onResponseHead()) {
            return;
          }
          break;
        case Event::Type::kBody:
          if (x_.draining) {
            x_.drained += ev.data.size();
            if (x_.drained > kMaxDrainBytes) {
              finishDrain(false);
              return;
            }
            break;
          }
          out_.append(ev.data);
          x_.response_bytes += ev.data.size();
          break;
        case Event::Type::kMessageComplete:
          if (x_.status >= 200) {
            completeResponse(x_.resp->head().keep_alive && input.empty());
            return;
          }
          break;  // an interim (1xx) response: the final one follows
        case Event::Type::kError:
          failTry(Outcome::kReset, std::nullopt, true, 502, "invalid response from upstream\n");
          return;
      }
    }
  }

  // False when the try ended here (a retry, or a refusal).
  bool onResponseHead() {
    const http::MessageHead& head = x_.resp->head();
    x_.status = head.status;
    if (head.status < 200) {
      if (head.status == 101) {
        failTry(Outcome::kReset, std::nullopt, true, 502, "unexpected protocol switch\n");
        return false;
      }
      x_.status = 0;
      return true;  // 100 Continue was answered here already; others are dropped
    }
    if (acquireRetry(head.status, true)) {
      const Outcome outcome = head.status >= 500 ? Outcome::kHttp5xx : Outcome::kSuccess;
      const bool small = head.framing == http::BodyFraming::kNone ||
                         head.framing == http::BodyFraming::kChunked ||
                         (head.framing == http::BodyFraming::kContentLength &&
                          head.content_length <= kMaxDrainBytes);
      if (head.keep_alive && small) {
        x_.draining = outcome;  // read on, drop the body, keep the connection, then retry
        x_.drained = 0;
        return true;
      }
      endTry(outcome, false);
      scheduleRetry();
      return false;
    }
    x_.resp_started = true;
    x_.answered = head.status;
    const bool close = !x_.keep_alive || head.framing == http::BodyFraming::kUntilClose;
    if (close) {
      close_after_ = true;
    }
    out_.append(forwardedResponseHead(head, close, x_.response_edits));
    return true;
  }

  void completeResponse(bool reusable) {
    if (x_.draining) {
      finishDrain(reusable);
      return;
    }
    endTry(x_.status >= 500 ? Outcome::kHttp5xx : Outcome::kSuccess, reusable);
    finishExchange();
  }

  // The retried response is over (read whole: `reusable`; or cut short): on to the retry.
  void finishDrain(bool reusable) {
    const Outcome outcome = *x_.draining;
    x_.draining.reset();  // the retry-budget slot taken for it now goes to the retry
    endTry(outcome, reusable);
    scheduleRetry();
  }

  // The upstream connection closed or failed before the response was complete.
  void upstreamGone() {
    // A fresh connection that never answered most likely never connected (the socketpair
    // hides the connect): nothing reached the backend. A reused one may have delivered it.
    const bool sent = x_.resp_bytes || x_.conn.responses > 0;
    failTry(sent ? Outcome::kReset : Outcome::kConnectFailure, std::nullopt, sent, 503,
            "upstream connect error or disconnect/reset before headers\n");
  }

  // Whether the current failure may be retried; takes a budget slot when so.
  bool acquireRetry(std::optional<int> status, bool sent) {
    if (!x_.body_complete || x_.streaming || closed_) {
      return false;
    }
    if (!routing::retryable(x_.rule->retry(), x_.tries, x_.method, status, sent)) {
      return false;
    }
    if (!x_.cluster->budget.tryAcquireRetry()) {
      return false;
    }
    count(&routing::RouteStats::retries);
    return true;
  }

  void scheduleRetry() {
    x_.retry_try = true;
    absl::Duration wait = routing::backoff(x_.rule->retry(), x_.tries, ctx_.rng);
    x_.wait_timer = ctx_.loop.addTimer(toMs(wait), [this] {
      x_.wait_timer = 0;
      startTry();
      writeClient();
    });
  }

  void releaseRetrySlot() {
    if (x_.retry_try) {
      x_.cluster->budget.retryFinished();
      x_.retry_try = false;
    }
  }

  // Ends the current try: outcome to the cluster, connection back to the pool or closed.
  void endTry(Outcome outcome, bool reusable) {
    if (x_.draining) {
      // Ended otherwise (request timeout, client gone): the retry it was read for never comes.
      outcome = *x_.draining;
      x_.draining.reset();
      x_.cluster->budget.retryFinished();
    }
    if (x_.ticket != nullptr) {
      x_.cluster->limiter.cancel(x_.ticket);  // still waiting: leave the queue
      x_.ticket.reset();
      outcome = Outcome::kSuccess;  // no connection yet: not the endpoint's doing
    }
    if (x_.try_timer != 0) {
      ctx_.loop.cancelTimer(x_.try_timer);
      x_.try_timer = 0;
    }
    if (x_.pick) {
      routing::Cluster& cluster = x_.cluster->cluster;
      const uint64_t before = cluster.ejectionsTotal();
      cluster.done(*x_.pick, outcome, absl::Now());
      const uint64_t ejected = cluster.ejectionsTotal() - before;
      if (ejected > 0 && x_.stats != nullptr) {
        x_.stats->ejections.fetch_add(ejected, std::memory_order_relaxed);
      }
      x_.pick.reset();
    }
    releaseRetrySlot();
    if (x_.link != nullptr) {
      ctx_.loop.remove(x_.conn.fd);
      x_.link->owner = nullptr;
      ctx_.loop.deleteLater(std::unique_ptr<Deferred>(x_.link));
      x_.link = nullptr;
      up_interest_ = 0;
      if (reusable && !closed_) {
        ++x_.conn.responses;
        upstreamPool(ctx_).put(std::move(x_.conn));
      } else {
        reusable ? (void)::close(x_.conn.fd) : closeWithReset(x_.conn.fd);
      }
      x_.conn = UpstreamConn{};
    }
    x_.slot.reset();  // to the first waiting request, if any
    x_.resp.reset();
  }

  void failTry(Outcome outcome, std::optional<int> retry_status, bool sent, int status,
               const char* text) {
    if (x_.draining) {
      finishDrain(false);  // the retry was decided already; only the connection is lost
      return;
    }
    const bool started = x_.resp_started;
    const bool retry = !started && acquireRetry(retry_status, sent);
    endTry(outcome, false);
    if (started) {
      closeAll(true);  // part of the response went out: only a reset tells the client
      return;
    }
    if (retry) {
      scheduleRetry();
      return;
    }
    if (outcome == Outcome::kTimeout) {
      count(&routing::RouteStats::timeouts);
    }
    x_.flags = outcome == Outcome::kConnectFailure ? "UF"
               : outcome == Outcome::kTimeout      ? "UT"
               : status == 502                     ? "UPE"
                                                   : "UC";
    reply(status, text);
  }

  // A local answer in place of the response, ending the exchange.
  void reply(int status, std::string_view text) {
    // Before the request is read whole, its remaining bytes cannot be told from the next one's.
    sendLocal(status, text, !x_.keep_alive || !x_.body_complete);
    finishExchange();
  }

  void onOverallTimeout() {
    x_.overall_timer = 0;
    count(&routing::RouteStats::timeouts);
    const bool started = x_.resp_started;
    endTry(Outcome::kTimeout, false);
    if (x_.wait_timer != 0) {
      ctx_.loop.cancelTimer(x_.wait_timer);
      x_.wait_timer = 0;
    }
    if (started) {
      closeAll(true);
      return;
    }
    x_.flags = "UT";
    reply(504, "upstream request timeout\n");
    writeClient();
  }

  void finishExchange() {
    for (EventLoop::TimerId* t : {&x_.overall_timer, &x_.try_timer, &x_.wait_timer}) {
      if (*t != 0) {
        ctx_.loop.cancelTimer(*t);
        *t = 0;
      }
    }
    endTry(Outcome::kSuccess, false);  // no-op unless a try is still open
    if (x_.budget_started) {
      x_.cluster->budget.requestFinished();
    }
    report();
    const bool request_read = x_.body_complete;
    x_ = Exchange{};
    if (!request_read) {
      close_after_ = true;  // answered early: the rest of this request is never parsed
      in_request_ = false;
    }
    paused_ = false;
    if (in_eof_) {
      close_after_ = true;
    }
    if (!closed_ && !close_after_) {
      parseRequests();
    }
  }

  // The source side's istio_requests_total & co and access-log line for the exchange (the
  // destination's agent reports the same request as reporter="destination").
  void report() {
    if (!x_.active || x_.reported) {
      return;
    }
    x_.reported = true;
    // Refused before routing (400, 501): no state was taken for the request yet.
    auto held = x_.state != nullptr ? x_.state : ctx_.shared.workloads->current();
    const WorkloadState& state = *held;
    Destination dest;
    model::ObjectKey service = service_;
    if (x_.endpoint) {
      dest = destinationOf(*x_.endpoint);
      service = x_.backend_service;
    } else {
      dest.ip = vip_;  // answered here: nothing behind the VIP was picked
      dest.port = port_;
    }
    PodIdentity identity = identityOf(*pod_, state.workloadByUid(pod_->info.uid));
    HttpRequestInfo r;
    r.connection =
        outboundReport(state, *pod_, principalOf(state.trustDomain(), identity), source_ip_, dest,
                       dest.workload != nullptr && dest.workload->mesh_enabled, nullptr);
    r.connection.destination_service = model::Service{.key = service}.hostname();
    r.policy_evaluated = false;  // the destination authorizes
    r.response_flags = x_.flags;
    r.method = x_.method;
    r.path = x_.path;
    r.authority = x_.authority;
    r.response_code = x_.answered;
    r.request_bytes = x_.request_bytes;
    r.response_bytes = x_.response_bytes;
    r.duration = absl::FromChrono(std::chrono::steady_clock::now() - x_.started);
    r.upstream_cluster = x_.upstream_cluster;
    if (!x_.trace && ctx_.shared.telemetry->spanExporter() != nullptr) {
      x_.trace = forwardedTrace("", ctx_.shared.telemetry->sampler());  // refused before routing
    }
    if (x_.trace) {
      auto incoming = trace::parseTraceparent(x_.incoming_traceparent);
      setTrace(r, incoming.ok() ? &*incoming : nullptr, *x_.trace);
    }
    ctx_.shared.telemetry->recordRequest(r);
  }

  void closeAll(bool reset) {
    if (closed_) {
      return;
    }
    // The client went away (or must be reset): not the endpoint's fault.
    endTry(Outcome::kSuccess, false);
    if (x_.active && x_.answered == 0) {
      x_.flags = "DC";  // downstream connection termination before an answer
    }
    report();
    closed_ = true;
    *alive_ = false;
    for (EventLoop::TimerId* t : {&x_.overall_timer, &x_.try_timer, &x_.wait_timer}) {
      if (*t != 0) {
        ctx_.loop.cancelTimer(*t);
        *t = 0;
      }
    }
    if (x_.budget_started) {
      x_.cluster->budget.requestFinished();
      x_.budget_started = false;
    }
    ctx_.loop.remove(fd_);
    reset ? closeWithReset(fd_) : (void)::close(fd_);
    fd_ = -1;
    ctx_.stats.inc(ctx_.stats.connections_active, -1);
    ctx_.loop.deleteLater(std::unique_ptr<Deferred>(this));
  }

  WorkerContext& ctx_;
  std::shared_ptr<const LocalPod> pod_;
  model::ObjectKey service_;
  std::string vip_;
  uint16_t port_;
  std::string source_ip_;
  int fd_;
  uint32_t interest_ = 0;
  uint32_t up_interest_ = 0;
  std::string in_;  // client bytes not parsed yet
  std::string out_;
  size_t out_off_ = 0;
  bool in_eof_ = false;
  bool in_request_ = false;
  bool paused_ = false;
  bool parsing_ = false;
  bool close_after_ = false;
  bool closed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for posted grants
  http::Http1Parser req_{http::Http1Parser::Kind::kRequest};
  Exchange x_;
};

void UpstreamLink::onEvents(uint32_t events) {
  if (owner != nullptr) {
    owner->onUpstream(events);
  }
}

}  // namespace

void startHttpOutbound(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& source,
                       const SocketAddress& original, const std::string& source_ip, int fd) {
  auto state = ctx.shared.workloads->current();
  auto vip = state->serviceByVip(original.ip(), original.port());
  if (!vip || ctx.shared.routing == nullptr) {
    closeWithReset(fd);
    return;
  }
  auto* conn = new HttpOutbound(ctx, source, vip->service->key, original.ip(), original.port(),
                                source_ip, fd);
  conn->start();
}

}  // namespace ferry::agent
