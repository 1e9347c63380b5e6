// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "http/http1_filter.h"  // FilterOutput, RequestRecord
#include "http/path.h"
#include "http/request_view.h"

struct nghttp2_session;

// The HTTP/2 (and gRPC) L7 filter, same sans-IO shape as Http1Filter: an nghttp2 server session
// faces the client, an nghttp2 client session faces the app, and each client stream is
// authorized on its own. A denied stream gets `:status 403` (gRPC: trailers-only with
// grpc-status 7 PERMISSION_DENIED) while the other streams of the connection carry on.
// The authority is :authority, else Host, normalized (authority.h) and forwarded as :authority
// alone; a Host naming another authority than :authority makes the request malformed (RFC 9113
// 8.3.1: 400 on its stream). CONNECT streams reach the authorizer with RequestView::tunnel set.
//
// Limits: SETTINGS_MAX_CONCURRENT_STREAMS and MAX_HEADER_LIST_SIZE are advertised and enforced
// (nghttp2 refuses extra streams; an oversized header list gets 431 on its stream); client
// RST_STREAMs drain a token bucket (CVE-2023-44487 rapid reset) and an empty bucket ends the
// connection with GOAWAY(ENHANCE_YOUR_CALM); CONTINUATION floods hit nghttp2's per-block frame
// limit. Flow control is end to end: a client's window is only reopened as its bytes are
// handed to the app (and the other way round), so a slow side bounds the buffering.
namespace ferry::http {

// HTTP/2's connection preface (RFC 9113 3.4), what a client with prior knowledge (h2c, gRPC)
// sends first.
inline constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum class PrefaceSniff { kHttp2, kNotHttp2, kNeedMore };
// Whether a connection whose first bytes are `first` opens with the preface; kNeedMore while
// `first` is a proper prefix of it.
inline PrefaceSniff sniffH2Preface(std::string_view first) {
  const std::string_view seen = first.substr(0, kH2Preface.size());
  if (seen != kH2Preface.substr(0, seen.size())) {
    return PrefaceSniff::kNotHttp2;
  }
  return seen.size() == kH2Preface.size() ? PrefaceSniff::kHttp2 : PrefaceSniff::kNeedMore;
}

struct Http2FilterConfig {
  PathOptions path;
  Http1FilterConfig::Underscores underscores = Http1FilterConfig::Underscores::kReject;
  uint32_t max_concurrent_streams = 100;
  uint32_t max_header_list_bytes = 64 * 1024;  // RFC 9113 accounting: name + value + 32
  size_t max_continuations = 8;                // CONTINUATION frames after one HEADERS
  // Rapid reset: a client may reset `reset_burst` streams at once and `reset_rate` per second
  // after that.
  uint32_t reset_burst = 200;
  double reset_rate = 100.0;
  uint32_t initial_window = 64 * 1024 - 1;
  // The clock for the reset bucket; tests pass a fake one.
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
};

class Http2Filter {
 public:
  using Config = Http2FilterConfig;
  using RecordSink = std::function<void(const RequestRecord&)>;

  static absl::StatusOr<std::unique_ptr<Http2Filter>> create(Config config, Authorizer authorize,
                                                             RequestHeaderHook hook = nullptr);
  ~Http2Filter();
  Http2Filter(const Http2Filter&) = delete;
  Http2Filter& operator=(const Http2Filter&) = delete;

  // Both sessions' first bytes (client SETTINGS to the app, server SETTINGS to the client).
  void start(FilterOutput& out);
  void onDownstreamData(std::string_view data, FilterOutput& out);
  void onUpstreamData(std::string_view data, FilterOutput& out);
  void onDownstreamEof(FilterOutput& out);
  void onUpstreamEof(FilterOutput& out);

  void setRecordSink(RecordSink sink) { record_sink_ = std::move(sink); }
  bool closed() const { return closed_; }
  // Why the connection was ended (GOAWAY reason), empty while it is healthy.
  std::string_view closeReason() const { return close_reason_; }

  struct Stats {
    uint64_t allowed = 0;
    uint64_t denied = 0;
    uint64_t rejected = 0;  // malformed or oversized requests answered locally
    uint64_t client_resets = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Stream;
  struct Callbacks;
  Http2Filter(Config config, Authorizer authorize, RequestHeaderHook hook);

  Stream* downStream(int32_t id);
  Stream* upStream(int32_t id);
  void onRequestHeaders(Stream& s, bool end_stream);
  // A local reply: `body` empty is denialBody(status) for 403 and 429, else "N refused".
  void localReply(Stream& s, uint16_t status, bool grpc, std::string_view body = {},
                  const std::vector<std::pair<std::string, std::string>>& extra = {});
  void forwardRequest(Stream& s, const RequestView& view, std::string_view path, bool end_stream,
                      const HeaderEdits& decided);
  void onResponseHeaders(Stream& s, bool end_stream);
  void onClientReset();
  void terminate(uint32_t code, const char* reason);
  void pump(FilterOutput& out);
  void eraseStream(int32_t down_id);
  void emitRecord(Stream& s);
  void finishAll(FilterOutput& out);  // records for open streams, then closed

  Config config_;
  Authorizer authorize_;
  RequestHeaderHook hook_;
  RecordSink record_sink_;
  nghttp2_session* down_ = nullptr;                     // server side, facing the client
  nghttp2_session* up_ = nullptr;                       // client side, facing the app
  std::map<int32_t, std::unique_ptr<Stream>> streams_;  // by downstream stream id
  std::map<int32_t, int32_t> up_to_down_;
  double reset_tokens_;
  std::chrono::steady_clock::time_point reset_refill_at_;
  bool closed_ = false;
  std::string close_reason_;
  Stats stats_;
};

}  // namespace ferry::http
