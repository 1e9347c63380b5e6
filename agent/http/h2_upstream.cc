// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/h2_upstream.h"

#include <algorithm>
#include <chrono>

#include "agent/http/upstream_pool.h"
#include "agent/worker_context.h"
#include "log/log.h"

namespace ferry::agent {
namespace {

constexpr size_t kMaxStreamsPerConnection = 100;
constexpr int32_t kWindow = 16 * 1024 * 1024;  // the connection's receive window
constexpr size_t kReadChunk = 16 * 1024;

H2Upstream* self(void* user) {
  return static_cast<H2Upstream*>(user);
}

}  // namespace

std::vector<nghttp2_nv> toNv(const H2Fields& fields) {
  std::vector<nghttp2_nv> nva;
  nva.reserve(fields.size());
  for (const auto& [n, v] : fields) {
    nva.push_back({const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(n.data())),
                   const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(v.data())), n.size(),
                   v.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return nva;
}

H2UpstreamPool::~H2UpstreamPool() {
  for (auto& [key, list] : conns_) {
    for (H2Upstream* conn : list) {
      delete conn;
    }
  }
}

absl::StatusOr<H2Upstream*> H2UpstreamPool::get(const std::string& key,
                                                const std::shared_ptr<const LocalPod>& source,
                                                const WorkloadState& state,
                                                const Destination& destination,
                                                const std::string& source_ip) {
  std::vector<H2Upstream*>& list = conns_[key];
  for (H2Upstream* conn : list) {
    if (conn->hasRoom()) {
      return conn;
    }
  }
  auto opened = upstreamPool(ctx_).open(key, source, state, destination, source_ip);
  if (!opened.ok()) {
    return opened.status();
  }
  auto* conn = new H2Upstream(ctx_, *this, key, std::move(opened->link));
  list.push_back(conn);
  return conn;
}

size_t H2UpstreamPool::connectionCount() const {
  size_t n = 0;
  for (const auto& [key, list] : conns_) {
    n += list.size();
  }
  return n;
}

void H2UpstreamPool::forget(H2Upstream* conn) {
  for (auto it = conns_.begin(); it != conns_.end(); ++it) {
    auto& list = it->second;
    auto found = std::find(list.begin(), list.end(), conn);
    if (found != list.end()) {
      list.erase(found);
      if (list.empty()) {
        conns_.erase(it);
      }
      return;
    }
  }
}

H2Upstream::H2Upstream(WorkerContext& ctx, H2UpstreamPool& pool, std::string key,
                       std::unique_ptr<UpstreamLink> link)
    : ctx_(ctx), pool_(pool), key_(std::move(key)), link_(std::move(link)) {
  link_->bind([this] { onEvents(); });
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_send_callback(
      cbs, [](nghttp2_session* s, const uint8_t* d, size_t n, int f, void* u) -> ssize_t {
        return onSend(s, d, n, f, u);
      });
  nghttp2_session_callbacks_set_on_header_callback(
      cbs,
      [](nghttp2_session* s, const nghttp2_frame* f, const uint8_t* n, size_t nl, const uint8_t* v,
         size_t vl, uint8_t fl, void* u) { return onHeader(s, f, n, nl, v, vl, fl, u); });
  nghttp2_session_callbacks_set_on_frame_recv_callback(
      cbs,
      [](nghttp2_session* s, const nghttp2_frame* f, void* u) { return onFrameRecv(s, f, u); });
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &H2Upstream::onData);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &H2Upstream::onClose);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_client_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                 {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 256 * 1024}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, 2);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kWindow);
  if (!link_->start()) {
    dead_ = true;
  }
}

H2Upstream::~H2Upstream() {
  if (idle_timer_ != 0) {
    ctx_.loop.cancelTimer(idle_timer_);
  }
  nghttp2_session_del(session_);
  link_->close(/*reset=*/false);  // no-op once closed (fail())
}

bool H2Upstream::hasRoom() const {
  if (dead_ || goaway_) {
    return false;
  }
  const size_t remote =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return streams_.size() < std::min(kMaxStreamsPerConnection, remote);
}

absl::StatusOr<int32_t> H2Upstream::submit(const H2Fields& fields, H2UpstreamStream* owner) {
  if (dead_) {
    return absl::UnavailableError("upstream connection closed");
  }
  std::vector<nghttp2_nv> nva = toNv(fields);
  nghttp2_data_provider provider{};
  provider.read_callback = [](nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                              uint32_t* flags, nghttp2_data_source*, void* user) -> ssize_t {
    H2Upstream* up = self(user);
    auto it = up->streams_.find(id);
    if (it == up->streams_.end() || it->second.owner == nullptr) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    bool eof = false;
    long n = it->second.owner->upBody(buf, length, &eof);
    if (n < 0) {
      return NGHTTP2_ERR_DEFERRED;
    }
    if (eof) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      H2Fields trailers = it->second.owner->upRequestTrailers();
      if (!trailers.empty()) {
        std::vector<nghttp2_nv> tv = toNv(trailers);
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_submit_trailer(session, id, tv.data(), tv.size());
      }
    }
    return n;
  };
  const int32_t id =
      nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), &provider, nullptr);
  if (id < 0) {
    return absl::UnavailableError(nghttp2_strerror(id));
  }
  streams_[id].owner = owner;
  if (idle_timer_ != 0) {
    ctx_.loop.cancelTimer(idle_timer_);
    idle_timer_ = 0;
  }
  return id;
}

void H2Upstream::cancel(int32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) {
    return;
  }
  it->second.owner = nullptr;
  if (!dead_) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  }
}

void H2Upstream::resume(int32_t id) {
  if (!dead_ && streams_.count(id) != 0) {
    nghttp2_session_resume_data(session_, id);
  }
}

void H2Upstream::consume(int32_t id, size_t n) {
  if (!dead_ && n > 0 && nghttp2_session_consume_stream(session_, id, n) == 0) {
    flush();
  }
}

void H2Upstream::onEvents() {
  if (dead_) {
    return;
  }
  for (;;) {
    char buf[kReadChunk];
    Connection::ReadResult r = link_->read(buf, sizeof(buf));
    if (r.status == Connection::ReadStatus::kAgain) {
      break;
    }
    if (r.status != Connection::ReadStatus::kData) {
      fail();
      return;
    }
    heard_ = true;
    in_recv_ = true;
    const ssize_t rv =
        nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(buf), r.bytes);
    in_recv_ = false;
    if (rv < 0) {
      fail();
      return;
    }
    if (dead_) {
      return;
    }
  }
  flush();
}

void H2Upstream::flush() {
  if (dead_ || in_recv_) {
    return;  // inside a callback: onEvents() sends once it is out
  }
  if (in_flush_) {
    flush_again_ = true;  // called back from inside nghttp2_session_send: once more after it
    return;
  }
  in_flush_ = true;
  int rv = 0;
  do {
    flush_again_ = false;
    rv = nghttp2_session_send(session_);
  } while (rv == 0 && flush_again_ && !dead_);
  in_flush_ = false;
  if (dead_) {
    return;
  }
  if (rv != 0 || !link_->flush()) {
    fail();
    return;
  }
  if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
    fail();  // GOAWAY done both ways
    return;
  }
  link_->want(/*read=*/true, /*write=*/false);
}

void H2Upstream::fail() {
  if (dead_) {
    return;
  }
  dead_ = true;
  pool_.forget(this);
  // Every stream still open hears of the loss once.
  std::map<int32_t, Stream> open = std::move(streams_);
  streams_.clear();
  for (auto& [id, s] : open) {
    if (s.owner != nullptr) {
      s.owner->upClosed(false, NGHTTP2_INTERNAL_ERROR, heard_);
    }
  }
  link_->close(/*reset=*/true);
  ctx_.loop.deleteLater(std::unique_ptr<Deferred>(this));
}

void H2Upstream::armIdle() {
  if (!streams_.empty() || dead_ || idle_timer_ != 0) {
    return;
  }
  idle_timer_ = ctx_.loop.addTimer(
      std::chrono::milliseconds(ctx_.shared.config->pool_idle_timeout_ms), [this] {
        idle_timer_ = 0;
        if (streams_.empty()) {
          fail();
        }
      });
}

long H2Upstream::onSend(nghttp2_session*, const uint8_t* data, size_t n, int, void* user) {
  self(user)->link_->queue(std::string_view(reinterpret_cast<const char*>(data), n));
  return static_cast<long>(n);
}

int H2Upstream::onHeader(nghttp2_session*, const void* frame_ptr, const uint8_t* name,
                         size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                         void* user) {
  const auto* frame = static_cast<const nghttp2_frame*>(frame_ptr);
  if (frame->hd.type != NGHTTP2_HEADERS) {
    return 0;
  }
  auto it = self(user)->streams_.find(frame->hd.stream_id);
  if (it == self(user)->streams_.end()) {
    return 0;
  }
  std::string n(reinterpret_cast<const char*>(name), namelen);
  std::string v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") {
    it->second.status = std::atoi(v.c_str());
    return 0;
  }
  it->second.fields.emplace_back(std::move(n), std::move(v));
  return 0;
}

int H2Upstream::onFrameRecv(nghttp2_session*, const void* frame_ptr, void* user) {
  const auto* frame = static_cast<const nghttp2_frame*>(frame_ptr);
  H2Upstream* up = self(user);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    up->goaway_ = true;  // no new streams here; the open ones finish
  }
  auto it = up->streams_.find(frame->hd.stream_id);
  if (it == up->streams_.end()) {
    return 0;
  }
  Stream& s = it->second;
  const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (end) {
    s.ended = true;
  }
  if (frame->hd.type == NGHTTP2_HEADERS) {
    H2Fields fields = std::move(s.fields);
    s.fields.clear();
    if (s.owner == nullptr) {
      return 0;
    }
    if (!s.head_done) {
      if (s.status >= 100 && s.status < 200) {
        return 0;  // informational: dropped
      }
      s.head_done = true;
      s.owner->upHeaders(s.status, std::move(fields), end);
    } else {
      s.owner->upTrailers(std::move(fields));
    }
  }
  return 0;
}

int H2Upstream::onData(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data,
                       size_t len, void* user) {
  H2Upstream* up = self(user);
  // The connection's window reopens at once (16 MiB); each stream's only as its owner hands
  // the bytes on, which bounds what waits here per stream.
  nghttp2_session_consume_connection(session, len);
  auto it = up->streams_.find(id);
  if (it == up->streams_.end() || it->second.owner == nullptr) {
    nghttp2_session_consume_stream(session, id, len);  // nobody takes it
    return 0;
  }
  it->second.owner->upData(std::string_view(reinterpret_cast<const char*>(data), len));
  return 0;
}

int H2Upstream::onClose(nghttp2_session*, int32_t id, uint32_t error, void* user) {
  H2Upstream* up = self(user);
  auto it = up->streams_.find(id);
  if (it == up->streams_.end()) {
    return 0;
  }
  Stream s = std::move(it->second);
  up->streams_.erase(it);
  if (s.owner != nullptr) {
    const bool ended = error == NGHTTP2_NO_ERROR && s.ended;
    s.owner->upClosed(ended, error, error != NGHTTP2_REFUSED_STREAM);
  }
  up->armIdle();
  return 0;
}

H2UpstreamPool& h2UpstreamPool(WorkerContext& ctx) {
  if (!ctx.h2_upstreams) {
    ctx.h2_upstreams = std::make_unique<H2UpstreamPool>(ctx);
  }
  return *ctx.h2_upstreams;
}

}  // namespace ferry::agent
