// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The routed outbound for h2c (issue 22 point 1): the client's connection as an nghttp2 server
// session, one H2RoutedStream per request stream (decision, attempts, report), each try a
// stream on an h2 upstream connection (h2_upstream.h).
#include "agent/http/h2_outbound.h"

#include <nghttp2/nghttp2.h>

#include <map>
#include <memory>
#include <utility>

#include "agent/http/h2_routed_stream.h"
#include "agent/io/connection.h"
#include "log/log.h"

namespace ferry::agent {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxPendingOut = 256 * 1024;
constexpr uint32_t kMaxConcurrentStreams = 100;
constexpr uint32_t kStreamWindow = 256 * 1024;
constexpr int32_t kConnectionWindow = 16 * 1024 * 1024;

class H2Outbound final : public Deferred, public H2ClientSide {
 public:
  H2Outbound(WorkerContext& ctx, RoutedClient who, int fd)
      : ctx_(ctx),
        who_(std::move(who)),
        client_(ctx.loop, fd, [this](uint32_t e) { onEvents(e); }) {}
  ~H2Outbound() override {
    if (session_ != nullptr) {
      nghttp2_session_del(session_);
    }
  }

  void start(std::string received);
  void flush() override;
  nghttp2_session* session() override { return session_; }
  WorkerContext& ctx() override { return ctx_; }
  const RoutedClient& who() const override { return who_; }
  bool closed() const override { return closed_; }

 private:
  void onEvents(uint32_t events);
  void feed(std::string_view bytes);
  void closeAll();
  H2RoutedStream* stream(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second;
  }

  static ssize_t onSend(nghttp2_session*, const uint8_t* data, size_t n, int, void* user) {
    static_cast<H2Outbound*>(user)->client_.queue(
        std::string_view(reinterpret_cast<const char*>(data), n));
    return static_cast<ssize_t>(n);
  }
  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onData(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user);
  static int onClose(nghttp2_session*, int32_t id, uint32_t, void* user);

  WorkerContext& ctx_;
  RoutedClient who_;
  Connection client_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, H2RoutedStream*> streams_;
  bool closed_ = false;
  bool in_recv_ = false;
  bool in_flush_ = false;
  bool flush_again_ = false;
};

// ---- H2Outbound --------------------------------------------------------------------------------

void H2Outbound::start(std::string received) {
  ctx_.stats.inc(ctx_.stats.connections_active);
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_send_callback(cbs, &H2Outbound::onSend);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &H2Outbound::onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &H2Outbound::onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &H2Outbound::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &H2Outbound::onData);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &H2Outbound::onClose);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_server_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams},
                                 {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, 2);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  if (!client_.watch(true).ok()) {
    closeAll();
    return;
  }
  feed(received);
  flush();
}

void H2Outbound::onEvents(uint32_t events) {
  if (closed_) {
    return;
  }
  if (events & EPOLLERR) {
    closeAll();
    return;
  }
  while (!closed_ && client_.pending() < kMaxPendingOut) {
    char buf[kReadChunk];
    Connection::ReadResult r = client_.read(buf, sizeof(buf));
    if (r.status == Connection::ReadStatus::kAgain) {
      break;
    }
    if (r.status != Connection::ReadStatus::kData) {
      closeAll();
      return;
    }
    feed(std::string_view(buf, r.bytes));
  }
  flush();
}

void H2Outbound::feed(std::string_view bytes) {
  in_recv_ = true;
  const ssize_t rv = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  in_recv_ = false;
  if (rv < 0) {
    LOG_DEBUG("routed h2 from ", who_.pod->info.name, ": ", nghttp2_strerror(static_cast<int>(rv)));
    nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
  }
}

void H2Outbound::flush() {
  if (closed_ || in_recv_) {
    return;  // onEvents() sends once out of the session's callbacks
  }
  if (in_flush_) {
    flush_again_ = true;
    return;
  }
  in_flush_ = true;
  int rv = 0;
  do {
    flush_again_ = false;
    rv = nghttp2_session_send(session_);
  } while (rv == 0 && flush_again_);
  in_flush_ = false;
  if (rv != 0 || !client_.flush()) {
    closeAll();
    return;
  }
  const bool more = nghttp2_session_want_read(session_) || nghttp2_session_want_write(session_);
  if (!more && client_.pending() == 0) {
    closeAll();
    return;
  }
  client_.want(client_.pending() < kMaxPendingOut);
}

void H2Outbound::closeAll() {
  if (closed_) {
    return;
  }
  closed_ = true;
  std::map<int32_t, H2RoutedStream*> open = std::move(streams_);
  streams_.clear();
  for (auto& [id, s] : open) {
    s->clientClosed();
  }
  client_.close(false);
  ctx_.stats.inc(ctx_.stats.connections_active, -1);
  ctx_.loop.deleteLater(std::unique_ptr<Deferred>(this));
}

int H2Outbound::onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<H2Outbound*>(user);
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    self->streams_[frame->hd.stream_id] = new H2RoutedStream(*self, frame->hd.stream_id);
  }
  return 0;
}

int H2Outbound::onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                         size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                         void* user) {
  if (H2RoutedStream* s = static_cast<H2Outbound*>(user)->stream(frame->hd.stream_id)) {
    s->header(std::string(reinterpret_cast<const char*>(name), namelen),
              std::string(reinterpret_cast<const char*>(value), valuelen));
  }
  return 0;
}

int H2Outbound::onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  H2RoutedStream* s = static_cast<H2Outbound*>(user)->stream(frame->hd.stream_id);
  if (s == nullptr) {
    return 0;
  }
  const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_HEADERS) {
    s->headersDone(end);
  } else if (frame->hd.type == NGHTTP2_DATA && end) {
    s->bodyDone();
  }
  return 0;
}

int H2Outbound::onData(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data,
                       size_t len, void* user) {
  nghttp2_session_consume_connection(session, len);  // the stream's window bounds the buffering
  if (H2RoutedStream* s = static_cast<H2Outbound*>(user)->stream(id)) {
    s->body(std::string_view(reinterpret_cast<const char*>(data), len));
  } else {
    nghttp2_session_consume_stream(session, id, len);
  }
  return 0;
}

int H2Outbound::onClose(nghttp2_session*, int32_t id, uint32_t, void* user) {
  auto* self = static_cast<H2Outbound*>(user);
  auto it = self->streams_.find(id);
  if (it != self->streams_.end()) {
    H2RoutedStream* s = it->second;
    self->streams_.erase(it);
    s->clientClosed();
  }
  return 0;
}

}  // namespace

void startH2Outbound(WorkerContext& ctx, RoutedClient who, int fd, std::string received) {
  LOG_DEBUG("routed h2 outbound from ", who.pod->info.name, " to ", who.service.ns, "/",
            who.service.name, ":", who.port);
  (new H2Outbound(ctx, std::move(who), fd))->start(std::move(received));
}

}  // namespace ferry::agent
