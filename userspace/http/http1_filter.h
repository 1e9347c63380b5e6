// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"
#include "http/path.h"
#include "http/request_view.h"

// The HTTP/1.1 L7 filter: sits between a downstream client connection and an upstream (app)
// connection, authorizes every request, and forwards only what it has parsed and checked.
//
// Sans-IO: the owner reads sockets and calls onDownstreamData / onUpstreamData; the filter
// appends bytes to write to a FilterOutput. Nothing here blocks, owns a socket or a timer.
//
// Per request: the target is parsed and normalized once, the authorizer sees the normalized
// path, and on allow the request line is rewritten with that path (the head is re-serialized
// from the parsed fields, so nothing unparsed reaches the app). Bodies are forwarded as
// received, their framing already validated. A denied request gets
// `403 Forbidden` / `RBAC: access denied` in its place in the pipeline (after the responses to
// earlier requests), its body is read and dropped, and the connection stays usable. A
// malformed request gets 400 (or 414/431/501/505) and the connection closes.
// The authority is decided once (authority.h: absolute-form or CONNECT target over Host,
// normalized) and forwarded as the one Host field. Upgrades and CONNECT are authorized with
// RequestView::tunnel set (the authorizer decides whether a tunnel may open; a refused one gets
// 403 and the connection closes); once the app accepts them (101, or 2xx to CONNECT) both
// directions become a raw tunnel. `Upgrade: h2c` is stripped: an h2c connection would carry
// later requests past this filter.
namespace ferry::http {

struct Http1FilterConfig {
  Http1Limits limits;
  PathOptions path;
  // Header names with '_': some apps (CGI-style, nginx with underscores_in_headers) treat
  // them as '-', which would let `x_user` stand in for the `x-user` a policy looks at.
  enum class Underscores : uint8_t { kAllow, kReject, kDrop } underscores = Underscores::kReject;
  // Requests in flight (forwarded, waiting for a response) before reading pauses.
  size_t max_pending_requests = 32;
  // Downstream bytes buffered while paused; beyond this wantsDownstreamData() turns false.
  size_t max_held_bytes = 64 * 1024;
  // Times requests for their records (RequestRecord::duration); tests pass a fake one.
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
};

struct FilterOutput {
  std::string to_upstream;
  std::string to_downstream;
  bool shutdown_upstream = false;    // half-close towards the app after writing to_upstream
  bool shutdown_downstream = false;  // half-close towards the client after to_downstream
  bool close = false;                // write what is pending, then close both connections
  void clear() {
    to_upstream.clear();
    to_downstream.clear();
    shutdown_upstream = shutdown_downstream = close = false;
  }
};

// One finished request, for access logs and metrics (istio_requests_total).
struct RequestRecord {
  std::string method;
  std::string path;
  std::string authority;
  bool authorized = false;  // the authorizer was asked (false: refused as malformed first)
  bool allowed = false;
  std::string policy;
  std::string rule;
  std::string reason;          // the authorizer's explanation (AuthzDecision::reason)
  uint16_t status = 0;         // response status (403 for denials, 0 if none was sent)
  std::string response_flags;  // AuthzDecision::response_flags of a refused request ("RL")
  bool local_reply = false;    // answered by the filter, not the app
  bool grpc = false;           // content-type application/grpc[+...]
  int grpc_status = -1;        // grpc-status of the response (trailers or trailers-only); -1: none
  // Body bytes (Istio's request and response sizes): what the app was sent of the request's
  // body, and what the client was sent of the response's (the app's, or a local reply's).
  uint64_t request_body_bytes = 0;
  uint64_t response_body_bytes = 0;
  // From the complete request head to the end of the response, on the filter's clock.
  std::chrono::nanoseconds duration{0};
  // traceparent as received (repeated fields joined with ','); empty when absent.
  std::string traceparent;
  // The traceparent the header hook set on the forwarded request; empty when it set none or
  // the request was not forwarded.
  std::string forwarded_traceparent;
};

class Http1Filter {
 public:
  using Config = Http1FilterConfig;
  using RecordSink = std::function<void(const RequestRecord&)>;

  Http1Filter(Config config, Authorizer authorize, RequestHeaderHook hook = nullptr);

  void onDownstreamData(std::string_view data, FilterOutput& out);
  void onUpstreamData(std::string_view data, FilterOutput& out);
  void onDownstreamEof(FilterOutput& out);
  void onUpstreamEof(FilterOutput& out);

  // Optional: called once per request when its response (or local reply) is complete.
  void setRecordSink(RecordSink sink) { record_sink_ = std::move(sink); }

  // False while enough downstream bytes are buffered: stop reading the client for now.
  bool wantsDownstreamData() const { return !closed_ && held_.size() < config_.max_held_bytes; }
  bool tunneling() const { return tunnel_; }
  // Bytes of a request head that is not complete yet have arrived (parsed in part, or held
  // while paused): the owner times them like a new request's head.
  bool partialRequestHead() const {
    return !closed_ && !tunnel_ && (!held_.empty() || (!req_.idle() && !req_.inBody()));
  }
  bool closed() const { return closed_; }
  // Why the last request was refused (empty when none was), for the access log.
  std::string_view lastError() const { return last_error_; }

  struct Stats {
    uint64_t allowed = 0;
    uint64_t denied = 0;
    uint64_t rejected = 0;   // malformed requests (400 family)
    uint64_t responses = 0;  // responses relayed from the app
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Pending {
    enum class Kind : uint8_t { kForwarded, kDenied, kError } kind = Kind::kForwarded;
    bool head_request = false;
    bool connect_request = false;
    bool upgrade = false;
    bool close_after = false;
    uint16_t error_status = 0;
    // A refusal's local reply (AuthzDecision): status, body and header fields.
    uint16_t deny_status = 403;
    std::string deny_body;
    std::vector<std::pair<std::string, std::string>> reply_headers;
    RequestRecord record;  // filled only when a record sink is set
    std::chrono::steady_clock::time_point started;
  };

  bool paused() const;
  void runDownstream(std::string_view& in, FilterOutput& out);
  void resumeDownstream(FilterOutput& out);
  void onRequestHead(FilterOutput& out);
  void onRequestComplete();
  void rejectRequest(uint16_t status, const char* reason, FilterOutput& out);
  void flushLocalReplies(FilterOutput& out);
  // Returns the traceparent the hook set, as forwarded ("" when none).
  std::string serializeRequest(const RequestView& view, std::string_view target,
                               const HeaderEdits& decided, FilterOutput& out);
  void finishResponse(FilterOutput& out);
  void maybeCloseAtEof(FilterOutput& out);
  void upstreamFailed(const char* reason, FilterOutput& out);
  void emitRecord(Pending& p);
  void closeNow(FilterOutput& out);

  Config config_;
  Authorizer authorize_;
  RequestHeaderHook hook_;
  RecordSink record_sink_;

  Http1Parser req_;
  Http1Parser resp_;
  // Oldest first. A vector, not a deque: a deque of elements this large gives each its own
  // block, allocated and freed per request, where the vector keeps its slots for the next one.
  std::vector<Pending> pending_;
  std::string held_;                  // downstream bytes not yet parsed (paused)
  std::string authority_;             // the current request's, normalized (authority.h)
  std::vector<Header> view_headers_;  // reused per request: Host first, holding authority_
  HeaderEdits edits_;
  std::string last_error_;

  bool forward_body_ = false;     // body bytes of the current request go upstream
  bool current_upgrade_ = false;  // current request asks for a protocol switch
  bool current_last_ = false;     // current request ends the connection (Connection: close)
  bool awaiting_switch_ = false;  // an Upgrade/CONNECT request waits for its response
  bool stop_reading_ = false;     // downstream bytes are ignored from now on
  bool downstream_eof_ = false;
  bool resp_active_ = false;   // a response head is expected or being read
  bool resp_started_ = false;  // bytes of the current response went downstream
  bool switching_ = false;     // the current response switches protocols
  bool resp_interim_ = false;  // the current response is 1xx (not 101)
  bool upstream_eof_ = false;
  bool tunnel_ = false;
  bool closed_ = false;
  Stats stats_;
};

}  // namespace ferry::http
