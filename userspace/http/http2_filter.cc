// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "http/http2_filter.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "http/authority.h"
#include "http/chars.h"

namespace ferry::http {

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

nghttp2_nv nv(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

std::vector<nghttp2_nv> toNv(const Fields& fields) {
  std::vector<nghttp2_nv> out;
  out.reserve(fields.size());
  for (const auto& [n, v] : fields) {
    out.push_back(nv(n, v));
  }
  return out;
}

// gRPC's mapping of HTTP statuses (doc/http-grpc-status-mapping.md) for local replies.
const char* grpcStatusFor(uint16_t status) {
  switch (status) {
    case 401:
      return "16";  // UNAUTHENTICATED
    case 403:
      return "7";  // PERMISSION_DENIED
    case 431:
      return "8";  // RESOURCE_EXHAUSTED
    case 429:
    case 502:
    case 503:
      return "14";  // UNAVAILABLE
    default:
      return "13";  // INTERNAL
  }
}

// The response's grpc-status: in trailers, or in the headers of a trailers-only response.
int grpcStatusOf(const Fields& trailers, const Fields& headers) {
  for (const Fields* fields : {&trailers, &headers}) {
    for (const auto& [n, v] : *fields) {
      if (n == "grpc-status" && !v.empty() && v.size() <= 2 &&
          std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::atoi(v.c_str());
      }
    }
  }
  return -1;
}

bool validFieldValue(std::string_view v) {
  for (char c : v) {
    if (!chars::is(c, chars::kFieldVchar) && !chars::isWs(c)) {
      return false;
    }
  }
  return v.empty() || (!chars::isWs(v.front()) && !chars::isWs(v.back()));
}

}  // namespace

struct Http2Filter::Stream {
  int32_t down_id = 0;
  int32_t up_id = 0;
  Fields req;  // request fields, pseudo-headers first (as nghttp2 enforces)
  Fields req_trailers;
  Fields resp;
  Fields resp_trailers;
  size_t header_bytes = 0;
  bool oversize = false;
  std::string authority;  // normalized, forwarded as :authority
  bool forwarded = false;
  bool local = false;
  bool resp_started = false;
  bool up_closed = false;
  // Request body towards the app.
  std::string to_up;
  size_t to_up_off = 0;
  bool to_up_eof = false;
  bool up_deferred = false;
  // Response body towards the client.
  std::string to_down;
  size_t to_down_off = 0;
  bool to_down_eof = false;
  bool down_deferred = false;
  RequestRecord record;
  std::chrono::steady_clock::time_point started;
};

// nghttp2 callbacks. One set serves both sessions; `session == f->down_` tells them apart.
struct Http2Filter::Callbacks {
  static Http2Filter* self(void* user) { return static_cast<Http2Filter*>(user); }

  static int onBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    Http2Filter* f = self(user);
    if (session == f->down_ && frame->hd.type == NGHTTP2_HEADERS &&
        frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      auto s = std::make_unique<Stream>();
      s->down_id = frame->hd.stream_id;
      s->started = f->config_.now();
      f->streams_[s->down_id] = std::move(s);
    }
    return 0;
  }

  static int onHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    Http2Filter* f = self(user);
    const bool down = session == f->down_;
    Stream* s = down ? f->downStream(frame->hd.stream_id) : f->upStream(frame->hd.stream_id);
    if (s == nullptr) {
      return 0;
    }
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > f->config_.max_header_list_bytes) {
      s->oversize = true;
      return 0;
    }
    std::string n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    Fields* target;
    if (down) {
      target = frame->headers.cat == NGHTTP2_HCAT_REQUEST ? &s->req : &s->req_trailers;
    } else {
      target = s->resp_started ? &s->resp_trailers : &s->resp;
    }
    target->emplace_back(std::move(n), std::move(v));
    return 0;
  }

  static int onFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    Http2Filter* f = self(user);
    const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (session == f->down_) {
      if (frame->hd.type == NGHTTP2_RST_STREAM) {
        f->onClientReset();
        return 0;
      }
      Stream* s = f->downStream(frame->hd.stream_id);
      if (s == nullptr) {
        return 0;
      }
      if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        f->onRequestHeaders(*s, end_stream);
      } else if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
                 end_stream && s->forwarded) {
        s->to_up_eof = true;
        if (s->up_deferred && s->up_id > 0) {
          s->up_deferred = false;
          nghttp2_session_resume_data(f->up_, s->up_id);
        }
      }
      return 0;
    }
    Stream* s = f->upStream(frame->hd.stream_id);
    if (s == nullptr) {
      return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS) {
      if (!s->resp_started) {
        f->onResponseHeaders(*s, end_stream);
      } else if (end_stream) {
        s->to_down_eof = true;  // trailers
      }
    } else if (frame->hd.type == NGHTTP2_DATA && end_stream) {
      s->to_down_eof = true;
    }
    if (s->to_down_eof && s->down_deferred) {
      s->down_deferred = false;
      nghttp2_session_resume_data(f->down_, s->down_id);
    }
    return 0;
  }

  static int onDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t len, void* user) {
    Http2Filter* f = self(user);
    if (session == f->down_) {
      Stream* s = f->downStream(stream_id);
      if (s == nullptr || !s->forwarded || s->up_closed) {
        nghttp2_session_consume(f->down_, stream_id, len);  // dropped: reopen the window now
        return 0;
      }
      s->to_up.append(reinterpret_cast<const char*>(data), len);
      s->record.request_body_bytes += len;
      if (s->up_deferred) {
        s->up_deferred = false;
        nghttp2_session_resume_data(f->up_, s->up_id);
      }
      return 0;
    }
    Stream* s = f->upStream(stream_id);
    if (s == nullptr) {
      nghttp2_session_consume(f->up_, stream_id, len);
      return 0;
    }
    s->to_down.append(reinterpret_cast<const char*>(data), len);
    s->record.response_body_bytes += len;
    if (s->down_deferred) {
      s->down_deferred = false;
      nghttp2_session_resume_data(f->down_, s->down_id);
    }
    return 0;
  }

  static int onStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                           void* user) {
    Http2Filter* f = self(user);
    if (session == f->down_) {
      Stream* s = f->downStream(stream_id);
      if (s == nullptr) {
        return 0;
      }
      if (s->up_id > 0 && !s->up_closed) {
        nghttp2_submit_rst_stream(f->up_, NGHTTP2_FLAG_NONE, s->up_id, NGHTTP2_CANCEL);
      }
      f->emitRecord(*s);
      f->eraseStream(stream_id);
      return 0;
    }
    auto it = f->up_to_down_.find(stream_id);
    if (it == f->up_to_down_.end()) {
      return 0;
    }
    Stream* s = f->downStream(it->second);
    f->up_to_down_.erase(it);
    if (s == nullptr) {
      return 0;
    }
    s->up_closed = true;
    if (!s->to_down_eof) {
      if (!s->resp_started) {
        f->localReply(*s, 502, false);
      } else {
        nghttp2_submit_rst_stream(
            f->down_, NGHTTP2_FLAG_NONE, s->down_id,
            error_code == NGHTTP2_NO_ERROR ? uint32_t{NGHTTP2_INTERNAL_ERROR} : error_code);
      }
    }
    return 0;
  }

  // Request body towards the app: hands over buffered client bytes and reopens the client's
  // window by exactly that much.
  static ssize_t readUp(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                        uint32_t* flags, nghttp2_data_source*, void* user) {
    Http2Filter* f = self(user);
    Stream* s = f->upStream(stream_id);
    if (s == nullptr) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    size_t n = std::min(length, s->to_up.size() - s->to_up_off);
    std::memcpy(buf, s->to_up.data() + s->to_up_off, n);
    s->to_up_off += n;
    if (s->to_up_off == s->to_up.size()) {
      s->to_up.clear();
      s->to_up_off = 0;
    }
    if (n > 0) {
      nghttp2_session_consume(f->down_, s->down_id, n);
    }
    if (s->to_up.empty() && s->to_up_eof) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!s->req_trailers.empty()) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        auto nva = toNv(s->req_trailers);
        nghttp2_submit_trailer(f->up_, stream_id, nva.data(), nva.size());
      }
      return static_cast<ssize_t>(n);
    }
    if (n == 0) {
      s->up_deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }

  static ssize_t readDown(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* user) {
    Http2Filter* f = self(user);
    Stream* s = f->downStream(stream_id);
    if (s == nullptr) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    size_t n = std::min(length, s->to_down.size() - s->to_down_off);
    std::memcpy(buf, s->to_down.data() + s->to_down_off, n);
    s->to_down_off += n;
    if (s->to_down_off == s->to_down.size()) {
      s->to_down.clear();
      s->to_down_off = 0;
    }
    if (n > 0 && !s->local && s->up_id > 0) {
      nghttp2_session_consume(f->up_, s->up_id, n);
    }
    if (s->to_down.empty() && s->to_down_eof) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!s->resp_trailers.empty()) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        auto nva = toNv(s->resp_trailers);
        nghttp2_submit_trailer(f->down_, stream_id, nva.data(), nva.size());
      }
      return static_cast<ssize_t>(n);
    }
    if (n == 0) {
      s->down_deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }
};

absl::StatusOr<std::unique_ptr<Http2Filter>> Http2Filter::create(Config config,
                                                                 Authorizer authorize,
                                                                 RequestHeaderHook hook) {
  if (config.max_concurrent_streams == 0 || config.max_header_list_bytes < 1024 ||
      config.reset_burst == 0 || config.reset_rate <= 0 || !config.now) {
    return absl::InvalidArgumentError(
        "http2 filter config: max_concurrent_streams, reset_burst and reset_rate must be "
        "positive, max_header_list_bytes at least 1024, and a clock is needed");
  }
  std::unique_ptr<Http2Filter> f(
      new Http2Filter(std::move(config), std::move(authorize), std::move(hook)));
  nghttp2_session_callbacks* cbs;
  if (nghttp2_session_callbacks_new(&cbs) != 0) {
    return absl::ResourceExhaustedError("nghttp2_session_callbacks_new failed");
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &Callbacks::onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &Callbacks::onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &Callbacks::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Callbacks::onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Callbacks::onStreamClose);
  nghttp2_option* opt;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    return absl::ResourceExhaustedError("nghttp2_option_new failed");
  }
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_continuations(opt, f->config_.max_continuations);
  // nghttp2's own wall-clock reset limiter stays on as a backstop, looser than ours.
  nghttp2_option_set_stream_reset_rate_limit(opt, uint64_t{f->config_.reset_burst} * 4,
                                             static_cast<uint64_t>(f->config_.reset_rate * 4));
  int rv = nghttp2_session_server_new2(&f->down_, cbs, f.get(), opt);
  if (rv == 0) {
    rv = nghttp2_session_client_new2(&f->up_, cbs, f.get(), opt);
  }
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    return absl::InternalError(std::string("nghttp2 session: ") + nghttp2_strerror(rv));
  }
  const nghttp2_settings_entry server_settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, f->config_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, f->config_.max_header_list_bytes},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, f->config_.initial_window},
  };
  const nghttp2_settings_entry client_settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, f->config_.max_header_list_bytes},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, f->config_.initial_window},
  };
  nghttp2_submit_settings(f->down_, NGHTTP2_FLAG_NONE, server_settings, 3);
  nghttp2_submit_settings(f->up_, NGHTTP2_FLAG_NONE, client_settings, 3);
  return f;
}

Http2Filter::Http2Filter(Config config, Authorizer authorize, RequestHeaderHook hook)
    : config_(std::move(config)),
      authorize_(std::move(authorize)),
      hook_(std::move(hook)),
      reset_tokens_(config_.reset_burst),
      reset_refill_at_(config_.now()) {}

Http2Filter::~Http2Filter() {
  nghttp2_session_del(down_);
  nghttp2_session_del(up_);
}

Http2Filter::Stream* Http2Filter::downStream(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

Http2Filter::Stream* Http2Filter::upStream(int32_t id) {
  auto it = up_to_down_.find(id);
  return it == up_to_down_.end() ? nullptr : downStream(it->second);
}

void Http2Filter::eraseStream(int32_t down_id) {
  auto it = streams_.find(down_id);
  if (it == streams_.end()) {
    return;
  }
  if (it->second->up_id > 0) {
    up_to_down_.erase(it->second->up_id);
  }
  streams_.erase(it);
}

void Http2Filter::onRequestHeaders(Stream& s, bool end_stream) {
  std::string_view method, path;
  std::optional<std::string_view> authority_field, host_field;
  bool malformed = false;
  std::vector<Header> headers;
  headers.reserve(s.req.size());
  for (const auto& [n, v] : s.req) {
    if (n == ":method") {
      method = v;
    } else if (n == ":path") {
      path = v;
    } else if (n == ":authority") {
      authority_field = v;
    } else if (n == "host") {
      // Not forwarded: the one authority goes as :authority (RFC 9113 8.3.1).
      malformed |= host_field.has_value();
      host_field = v;
    } else if (!n.empty() && n[0] != ':') {
      if (n.find('_') != std::string::npos &&
          config_.underscores != Http1FilterConfig::Underscores::kAllow) {
        if (config_.underscores == Http1FilterConfig::Underscores::kReject) {
          ++stats_.rejected;
          localReply(s, 400, false);
          return;
        }
        continue;
      }
      headers.push_back(Header{n, v});
    }
  }
  s.record.method = std::string(method);
  RequestView view;
  view.protocol = HttpProtocol::kHttp2;
  view.method = method;
  view.headers = headers;
  view.tunnel = method == "CONNECT" ? Tunnel::kConnect : Tunnel::kNone;
  if (auto ct = view.header("content-type")) {
    view.grpc = ct->substr(0, 16) == "application/grpc";
  }
  s.record.grpc = view.grpc;
  s.record.traceparent = view.headerJoined("traceparent").value_or("");
  if (s.oversize) {
    ++stats_.rejected;
    localReply(s, 431, view.grpc);
    return;
  }
  // :authority, else Host; both present and naming different authorities is malformed
  // (RFC 9113 8.3.1): one would be matched and the other read by the app.
  const std::string_view received = authority_field.value_or(host_field.value_or(""));
  s.record.authority = std::string(received);  // replaced by the normal form once accepted
  auto authority = normalizeAuthority(received);
  if (!malformed && authority.ok() && authority_field && host_field) {
    auto host = normalizeAuthority(*host_field);
    malformed = !host.ok() || *host != *authority;
  }
  if (malformed || !authority.ok()) {
    ++stats_.rejected;
    localReply(s, 400, view.grpc);
    return;
  }
  s.authority = *std::move(authority);
  view.authority = s.authority;
  s.record.authority = s.authority;
  RequestTarget target;
  if (method != "CONNECT") {
    auto parsed = parseRequestTarget(method, path, config_.path);
    if (!parsed.ok() || parsed->form == RequestTarget::Form::kAbsolute) {
      ++stats_.rejected;
      localReply(s, 400, view.grpc);
      return;
    }
    target = *std::move(parsed);
  }
  view.path = target.path;
  view.query = target.query;
  s.record.path = target.path;
  AuthzDecision decision = authorize_(view);
  s.record.authorized = true;
  s.record.allowed = decision.allow;
  s.record.policy = std::move(decision.policy);
  s.record.rule = std::move(decision.rule);
  s.record.reason = std::move(decision.reason);
  if (!decision.allow) {
    ++stats_.denied;
    s.record.response_flags = std::move(decision.response_flags);
    localReply(s, decision.status, view.grpc, decision.body, decision.reply_headers);
    return;
  }
  ++stats_.allowed;
  forwardRequest(s, view, method == "CONNECT" ? std::string_view() : target.forwarded(), end_stream,
                 decision.edits);
}

void Http2Filter::forwardRequest(Stream& s, const RequestView& view, std::string_view path,
                                 bool end_stream, const HeaderEdits& decided) {
  HeaderEdits edits;
  edits.append(decided);
  if (hook_) {
    hook_(view, edits);
  }
  const std::string fwd_path(path);
  std::vector<nghttp2_nv> nva;
  std::string_view scheme = "http";
  for (const auto& [n, v] : s.req) {
    if (n == ":scheme") {
      scheme = v;
    }
  }
  nva.push_back(nv(":method", view.method));
  if (view.method != "CONNECT") {
    nva.push_back(nv(":scheme", scheme));
    nva.push_back(nv(":path", fwd_path));
  }
  nva.push_back(nv(":authority", view.authority));
  for (const Header& h : view.headers) {
    if (!edits.removes(h.name)) {
      nva.push_back(nv(h.name, h.value));
    }
  }
  std::vector<std::string> lowered;
  lowered.reserve(edits.additions().size());
  for (const auto& [name, value] : edits.additions()) {
    std::string n = name;
    for (char& c : n) {
      c = chars::toLower(c);
    }
    if (!chars::isToken(n) || !validFieldValue(value) || n == "content-length" || n == "host" ||
        n == "connection" || n == "transfer-encoding" || n == "te") {
      continue;
    }
    if (n == "traceparent") {
      s.record.forwarded_traceparent = value;
    }
    lowered.push_back(std::move(n));
    nva.push_back(nv(lowered.back(), value));
  }
  nghttp2_data_provider prd{};
  prd.read_callback = &Callbacks::readUp;
  const int32_t up_id = nghttp2_submit_request(up_, nullptr, nva.data(), nva.size(),
                                               end_stream ? nullptr : &prd, nullptr);
  if (up_id < 0) {
    localReply(s, 502, view.grpc);
    return;
  }
  s.up_id = up_id;
  s.forwarded = true;
  s.to_up_eof = end_stream;
  up_to_down_[up_id] = s.down_id;
}

void Http2Filter::localReply(Stream& s, uint16_t status, bool grpc, std::string_view body,
                             const Fields& extra) {
  if (body.empty()) {
    body = status == 403 || status == 429 ? denialBody(status) : std::string_view();
  }
  s.local = true;
  s.forwarded = false;
  s.resp_started = true;
  s.record.status = status;
  s.record.local_reply = true;
  const std::string code = std::to_string(status);
  if (grpc) {
    s.record.grpc_status = std::atoi(grpcStatusFor(status));
    // Trailers-only: one HEADERS frame with END_STREAM carrying the gRPC status.
    std::vector<nghttp2_nv> nva = {
        nv(":status", code),
        nv("content-type", "application/grpc"),
        nv("grpc-status", grpcStatusFor(status)),
        nv("grpc-message", !body.empty() ? body : std::string_view("request refused")),
    };
    for (const auto& [n, v] : extra) {
      nva.push_back(nv(n, v));
    }
    nghttp2_submit_response(down_, s.down_id, nva.data(), nva.size(), nullptr);
    return;
  }
  s.to_down = !body.empty() ? std::string(body) : std::to_string(status) + " refused";
  s.record.response_body_bytes = s.to_down.size();
  s.to_down_off = 0;
  s.to_down_eof = true;
  const std::string length = std::to_string(s.to_down.size());
  std::vector<nghttp2_nv> nva = {
      nv(":status", code),
      nv("content-type", "text/plain"),
      nv("content-length", length),
  };
  for (const auto& [n, v] : extra) {
    nva.push_back(nv(n, v));
  }
  nghttp2_data_provider prd{};
  prd.read_callback = &Callbacks::readDown;
  nghttp2_submit_response(down_, s.down_id, nva.data(), nva.size(), &prd);
}

void Http2Filter::onResponseHeaders(Stream& s, bool end_stream) {
  uint16_t status = 0;
  for (const auto& [n, v] : s.resp) {
    if (n == ":status" && v.size() == 3) {
      status = static_cast<uint16_t>(std::atoi(v.c_str()));
    }
  }
  auto nva = toNv(s.resp);
  if (status >= 100 && status < 200) {
    // Interim (100 Continue, 103 Early Hints): relayed, the final response follows.
    nghttp2_submit_headers(down_, NGHTTP2_FLAG_NONE, s.down_id, nullptr, nva.data(), nva.size(),
                           nullptr);
    s.resp.clear();
    s.header_bytes = 0;
    return;
  }
  s.resp_started = true;
  s.record.status = status;
  s.to_down_eof = end_stream;
  nghttp2_data_provider prd{};
  prd.read_callback = &Callbacks::readDown;
  nghttp2_submit_response(down_, s.down_id, nva.data(), nva.size(), end_stream ? nullptr : &prd);
}

void Http2Filter::onClientReset() {
  ++stats_.client_resets;
  const auto now = config_.now();
  const double elapsed = std::chrono::duration<double>(now - reset_refill_at_).count();
  reset_refill_at_ = now;
  reset_tokens_ = std::min<double>(config_.reset_burst,
                                   reset_tokens_ + std::max(0.0, elapsed) * config_.reset_rate);
  if (reset_tokens_ < 1.0) {
    terminate(NGHTTP2_ENHANCE_YOUR_CALM, "rapid reset: client reset streams faster than allowed");
    return;
  }
  reset_tokens_ -= 1.0;
}

void Http2Filter::terminate(uint32_t code, const char* reason) {
  if (close_reason_.empty()) {
    close_reason_ = reason;
  }
  nghttp2_session_terminate_session(down_, code);
  nghttp2_session_terminate_session(up_, NGHTTP2_NO_ERROR);
}

void Http2Filter::pump(FilterOutput& out) {
  bool progress = true;
  while (progress && !closed_) {
    progress = false;
    for (auto [session, sink] :
         {std::pair{down_, &out.to_downstream}, std::pair{up_, &out.to_upstream}}) {
      while (true) {
        const uint8_t* data = nullptr;
        ssize_t n = nghttp2_session_mem_send(session, &data);
        if (n < 0) {
          close_reason_ = std::string("nghttp2: ") + nghttp2_strerror(static_cast<int>(n));
          closed_ = true;
          out.close = true;
          return;
        }
        if (n == 0) {
          break;
        }
        sink->append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
        progress = true;
      }
    }
  }
  auto finished = [](nghttp2_session* s) {
    return !nghttp2_session_want_read(s) && !nghttp2_session_want_write(s);
  };
  if (!closed_ && (finished(down_) || finished(up_))) {
    if (close_reason_.empty()) {
      close_reason_ = finished(down_) ? "client connection finished" : "app connection finished";
    }
    closed_ = true;
    out.close = true;
  }
}

void Http2Filter::start(FilterOutput& out) {
  pump(out);
}

void Http2Filter::onDownstreamData(std::string_view data, FilterOutput& out) {
  if (closed_) {
    return;
  }
  ssize_t rv =
      nghttp2_session_mem_recv(down_, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  if (rv < 0) {
    // Protocol violations (bad preface, floods, ...): nghttp2 has queued a GOAWAY if it can.
    if (close_reason_.empty()) {
      close_reason_ = std::string("client: ") + nghttp2_strerror(static_cast<int>(rv));
    }
    nghttp2_session_terminate_session(down_, NGHTTP2_PROTOCOL_ERROR);
  }
  pump(out);
}

void Http2Filter::onUpstreamData(std::string_view data, FilterOutput& out) {
  if (closed_) {
    return;
  }
  ssize_t rv =
      nghttp2_session_mem_recv(up_, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  if (rv < 0) {
    if (close_reason_.empty()) {
      close_reason_ = std::string("app: ") + nghttp2_strerror(static_cast<int>(rv));
    }
    terminate(NGHTTP2_INTERNAL_ERROR, "app sent invalid HTTP/2");
  }
  pump(out);
}

void Http2Filter::onDownstreamEof(FilterOutput& out) {
  if (!closed_) {
    close_reason_ = "client closed the connection";
    finishAll(out);
  }
}

void Http2Filter::onUpstreamEof(FilterOutput& out) {
  if (closed_) {
    return;
  }
  // No more app: answer what is in flight and stop taking streams.
  for (auto& [id, s] : streams_) {
    if (!s->resp_started) {
      localReply(*s, 502, false);
    } else if (!s->to_down_eof) {
      nghttp2_submit_rst_stream(down_, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
    }
  }
  // A graceful GOAWAY (not terminate) so the replies above are still sent before it.
  close_reason_ = "app closed the connection";
  nghttp2_submit_goaway(down_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(down_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
  pump(out);
  finishAll(out);
}

void Http2Filter::emitRecord(Stream& s) {
  if (!record_sink_) {
    return;
  }
  if (s.record.grpc && s.record.grpc_status < 0) {
    s.record.grpc_status = grpcStatusOf(s.resp_trailers, s.resp);
  }
  s.record.duration = config_.now() - s.started;
  record_sink_(s.record);
}

void Http2Filter::finishAll(FilterOutput& out) {
  for (auto& [id, s] : streams_) {
    emitRecord(*s);
  }
  streams_.clear();
  up_to_down_.clear();
  closed_ = true;
  out.close = true;
}

}  // namespace ferry::http
