// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

// In-memory HTTP/2 endpoints built on nghttp2 for filter tests: a client that records each
// stream's response, and an app (server) that answers each complete request.
namespace ferry::http::testing {

struct H2Message {
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::pair<std::string, std::string>> trailers;
  std::string body;
  bool complete = false;
  uint32_t reset = 0;  // RST_STREAM / close error code
  bool closed = false;
  std::string header(const std::string& name) const {
    for (const auto& [n, v] : headers) {
      if (n == name) {
        return v;
      }
    }
    return "";
  }
  std::string trailer(const std::string& name) const {
    for (const auto& [n, v] : trailers) {
      if (n == name) {
        return v;
      }
    }
    return "";
  }
};

class H2Peer {
 public:
  // The app's answer to a complete request; response headers (":status" first), body,
  // trailers. Unset: the app holds the request unanswered.
  struct Reply {
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::vector<std::pair<std::string, std::string>> trailers;
  };
  using Responder = std::function<bool(const H2Message& request, Reply& reply)>;

  H2Peer(bool server, Responder responder = nullptr, nghttp2_option* opt = nullptr)
      : server_(server), responder_(std::move(responder)) {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &onHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &onFrameRecv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &onData);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &onClose);
    if (server) {
      nghttp2_session_server_new2(&session_, cbs, this, opt);
    } else {
      nghttp2_session_client_new2(&session_, cbs, this, opt);
    }
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, 1);
  }
  ~H2Peer() { nghttp2_session_del(session_); }

  int32_t request(std::vector<std::pair<std::string, std::string>> headers, std::string body = "",
                  bool end_stream = true) {
    std::vector<nghttp2_nv> nva;
    for (auto& [n, v] : headers) {
      nva.push_back(
          {(uint8_t*)n.data(), (uint8_t*)v.data(), n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    auto* src = new std::string(std::move(body));
    owned_.emplace_back(src);
    nghttp2_data_provider prd{};
    prd.source.ptr = src;
    prd.read_callback = &readBody;
    const bool no_body = src->empty() && end_stream;
    int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                        no_body ? nullptr : &prd, nullptr);
    messages[id];
    return id;
  }
  void reset(int32_t id) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  }

  std::string drain() {
    std::string out;
    const uint8_t* p;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(session_, &p)) > 0) {
      out.append(reinterpret_cast<const char*>(p), n);
    }
    return out;
  }
  void feed(const std::string& bytes) {
    if (bytes.empty()) {
      return;
    }
    ssize_t rv = nghttp2_session_mem_recv(session_, (const uint8_t*)bytes.data(), bytes.size());
    if (rv < 0) {
      recv_error = static_cast<int>(rv);
    }
  }

  nghttp2_session* session() { return session_; }
  std::map<int32_t, H2Message> messages;  // client: responses; server: requests
  bool goaway = false;
  uint32_t goaway_code = 0;
  int recv_error = 0;

 private:
  static ssize_t readBody(nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* flags,
                          nghttp2_data_source* src, void*) {
    auto* s = static_cast<std::string*>(src->ptr);
    size_t n = std::min(len, s->size());
    std::memcpy(buf, s->data(), n);
    s->erase(0, n);
    if (s->empty()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return n;
  }
  static ssize_t readReply(nghttp2_session* session, int32_t id, uint8_t* buf, size_t len,
                           uint32_t* flags, nghttp2_data_source* src, void* user) {
    auto* r = static_cast<Reply*>(src->ptr);
    size_t n = std::min(len, r->body.size());
    std::memcpy(buf, r->body.data(), n);
    r->body.erase(0, n);
    if (r->body.empty()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!r->trailers.empty()) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv> nva;
        for (auto& [k, v] : r->trailers) {
          nva.push_back(
              {(uint8_t*)k.data(), (uint8_t*)v.data(), k.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
        }
        nghttp2_submit_trailer(session, id, nva.data(), nva.size());
      }
    }
    return n;
  }
  static int onHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                      const uint8_t* v, size_t vl, uint8_t, void* u) {
    auto* self = static_cast<H2Peer*>(u);
    H2Message& m = self->messages[f->hd.stream_id];
    const bool trailer = !m.headers.empty() && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
                         f->headers.cat == NGHTTP2_HCAT_HEADERS;
    (trailer ? m.trailers : m.headers)
        .emplace_back(std::string((const char*)n, nl), std::string((const char*)v, vl));
    return 0;
  }
  static int onFrameRecv(nghttp2_session* session, const nghttp2_frame* f, void* u) {
    auto* self = static_cast<H2Peer*>(u);
    if (f->hd.type == NGHTTP2_GOAWAY) {
      self->goaway = true;
      self->goaway_code = f->goaway.error_code;
    }
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      H2Message& m = self->messages[f->hd.stream_id];
      m.complete = true;
      if (self->server_ && self->responder_) {
        auto reply = std::make_unique<Reply>();
        if (self->responder_(m, *reply)) {
          std::vector<nghttp2_nv> nva;
          for (auto& [k, v] : reply->headers) {
            nva.push_back(
                {(uint8_t*)k.data(), (uint8_t*)v.data(), k.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
          }
          nghttp2_data_provider prd{};
          prd.source.ptr = reply.get();
          prd.read_callback = &readReply;
          nghttp2_submit_response(session, f->hd.stream_id, nva.data(), nva.size(), &prd);
          self->replies_.push_back(std::move(reply));
        }
      }
    }
    return 0;
  }
  static int onData(nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t l, void* u) {
    static_cast<H2Peer*>(u)->messages[id].body.append((const char*)d, l);
    return 0;
  }
  static int onClose(nghttp2_session*, int32_t id, uint32_t code, void* u) {
    H2Message& m = static_cast<H2Peer*>(u)->messages[id];
    m.closed = true;
    m.reset = code;
    return 0;
  }

  bool server_;
  Responder responder_;
  nghttp2_session* session_ = nullptr;
  std::vector<std::unique_ptr<std::string>> owned_;
  std::vector<std::unique_ptr<Reply>> replies_;
};

}  // namespace ferry::http::testing
