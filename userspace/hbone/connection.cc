// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "hbone/connection.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "hbone/baggage.h"
#include "hbone/resume.h"

namespace ferry::hbone {
namespace {

// One DATA frame (9-byte header + payload) fills one TLS record exactly, instead of spilling
// 9 bytes into a second record.
constexpr size_t kMaxTlsRecord = 16384;
constexpr size_t kFrameHeader = 9;

// Decrypted input on its way into nghttp2, which copies what it keeps before returning: one per
// thread instead of one per connection (16 KiB each).
thread_local uint8_t t_plaintext[kMaxTlsRecord];

ssize_t dataLength(nghttp2_session*, uint8_t /*frame_type*/, int32_t /*stream_id*/,
                   int32_t session_window, int32_t stream_window, uint32_t remote_max_frame,
                   void* /*user_data*/) {
  int64_t n = std::min<int64_t>({static_cast<int64_t>(kMaxTlsRecord - kFrameHeader), session_window,
                                 stream_window, static_cast<int64_t>(remote_max_frame)});
  return static_cast<ssize_t>(std::max<int64_t>(n, 1));
}

}  // namespace

HboneConnection::HboneConnection(std::unique_ptr<tls::TlsSession> tls, HboneSettings settings,
                                 bool server)
    : tls_(std::move(tls)), settings_(settings), server_(server) {}

HboneConnection::~HboneConnection() {
  if (h2_ != nullptr) {
    nghttp2_session_del(h2_);
  }
}

absl::Status HboneConnection::initSession() {
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) {
    return absl::ResourceExhaustedError("nghttp2: cannot allocate callbacks");
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &HboneConnection::onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &HboneConnection::onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &HboneConnection::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &HboneConnection::onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &HboneConnection::onStreamClose);
  nghttp2_session_callbacks_set_data_source_read_length_callback(cbs, dataLength);
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    return absl::ResourceExhaustedError("nghttp2: cannot allocate options");
  }
  // Window credit goes back to the peer only when the app side consumed the bytes: this is
  // what turns a slow reader into backpressure on the remote writer.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  int rv = server_ ? nghttp2_session_server_new2(&h2_, cbs, this, opt)
                   : nghttp2_session_client_new2(&h2_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    return absl::ResourceExhaustedError(absl::StrCat("nghttp2: ", nghttp2_strerror(rv)));
  }
  std::vector<nghttp2_settings_entry> iv = {
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.stream_window},
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, server_ ? settings_.max_concurrent_streams : 0},
  };
  if (!server_) {
    iv.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  }
  rv = nghttp2_submit_settings(h2_, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
  if (rv == 0) {
    rv = nghttp2_session_set_local_window_size(h2_, NGHTTP2_FLAG_NONE, 0,
                                               static_cast<int32_t>(settings_.connection_window));
  }
  if (rv != 0) {
    return absl::InternalError(absl::StrCat("nghttp2 settings: ", nghttp2_strerror(rv)));
  }
  return absl::OkStatus();
}

HboneConnection::Stream* HboneConnection::find(StreamId id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

absl::Status HboneConnection::fail(absl::Status status) {
  if (!failed_) {
    failed_ = true;
    error_ = status;
    failAllStreams(NGHTTP2_CONNECT_ERROR);
  }
  return status;
}

void HboneConnection::failAllStreams(uint32_t error_code) {
  for (auto& [id, stream] : streams_) {
    emit({HboneEventType::kClosed, id, 0, error_code});
  }
  streams_.clear();
}

absl::Status HboneConnection::onNetworkInput() {
  if (failed_) {
    return error_;
  }
  if (!tls_->handshakeDone()) {
    if (absl::Status s = tls_->handshake(); !s.ok()) {
      return fail(s);
    }
    if (!tls_->handshakeDone()) {
      return absl::OkStatus();
    }
  }
  if (!handshake_reported_) {
    handshake_reported_ = true;
    emit({HboneEventType::kHandshakeDone});
  }
  while (true) {
    absl::StatusOr<size_t> n = tls_->read(absl::MakeSpan(t_plaintext));
    if (!n.ok()) {
      return fail(n.status());
    }
    if (*n == 0) {
      break;
    }
    ssize_t rv = nghttp2_session_mem_recv(h2_, t_plaintext, *n);
    if (rv < 0) {
      // nghttp2 queued a GOAWAY describing the protocol error; let it out before failing.
      (void)produce();
      return fail(absl::InvalidArgumentError(
          absl::StrCat("HTTP/2 protocol error: ", nghttp2_strerror(static_cast<int>(rv)))));
    }
  }
  if (tls_->peerClosed()) {
    peer_gone_ = true;
    failAllStreams(NGHTTP2_CONNECT_ERROR);
  }
  return produce();
}

absl::Status HboneConnection::onNetworkOutputDrained() {
  if (failed_) {
    return error_;
  }
  return produce();
}

void HboneConnection::onNetworkEof() {
  peer_gone_ = true;
  failAllStreams(NGHTTP2_CONNECT_ERROR);
}

absl::Status HboneConnection::queued() {
  return settings_.batch_output ? absl::OkStatus() : produce();
}

absl::Status HboneConnection::flushStaged() {
  if (staged_.empty()) {
    return absl::OkStatus();
  }
  absl::Status s = tls_->write(staged_.readable());
  staged_.clear();
  return s;
}

absl::Status HboneConnection::produce() {
  if (failed_ || !tls_->handshakeDone()) {
    return absl::OkStatus();
  }
  while (tls_->networkOut().size() < settings_.output_high_water) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(h2_, &data);
    if (n < 0) {
      return fail(absl::InternalError(
          absl::StrCat("HTTP/2 send failed: ", nghttp2_strerror(static_cast<int>(n)))));
    }
    if (n == 0) {
      break;
    }
    auto chunk = absl::MakeConstSpan(data, static_cast<size_t>(n));
    // Small frames (preface, SETTINGS, HEADERS, WINDOW_UPDATE) share a record with what follows
    // while it fits; a big DATA frame goes alone, straight from nghttp2's buffer, but only when
    // nothing is staged: bytes reach TLS in the order nghttp2 produced them (issue 17: a first
    // DATA frame of 8-16 KiB once overtook the staged client preface).
    if (staged_.size() + chunk.size() > kMaxTlsRecord) {
      if (absl::Status s = flushStaged(); !s.ok()) {
        return fail(s);
      }
    }
    if (staged_.empty() && chunk.size() >= kMaxTlsRecord / 2) {
      if (absl::Status s = tls_->write(chunk); !s.ok()) {
        return fail(s);
      }
    } else {
      staged_.append(chunk);
    }
  }
  if (absl::Status s = flushStaged(); !s.ok()) {
    return fail(s);
  }
  return absl::OkStatus();
}

bool HboneConnection::finished() const {
  if (failed_ || peer_gone_) {
    return true;
  }
  return tls_->handshakeDone() && nghttp2_session_want_read(h2_) == 0 &&
         nghttp2_session_want_write(h2_) == 0;
}

void HboneConnection::drain() {
  if (failed_ || h2_ == nullptr) {
    return;
  }
  int32_t last = server_ ? nghttp2_session_get_last_proc_stream_id(h2_) : 0;
  nghttp2_submit_goaway(h2_, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, nullptr, 0);
  (void)produce();
}

void HboneConnection::announceDrain() {
  if (failed_ || h2_ == nullptr || !server_) {
    return;
  }
  nghttp2_submit_shutdown_notice(h2_);
  (void)produce();
}

void HboneConnection::takeEvents(std::vector<HboneEvent>& out) {
  out.clear();
  out.swap(events_);
}

absl::Span<const uint8_t> HboneConnection::peek(StreamId id) const {
  const Stream* s = find(id);
  if (s == nullptr || !mayDeliver(*s)) {
    return {};
  }
  return s->recv.readable();
}

void HboneConnection::creditConsumed(Stream& s, size_t n) {
  if (n == 0) {
    return;
  }
  // Credits the connection window always, and the stream's while nghttp2 still has it.
  nghttp2_session_consume(h2_, s.id, n);
  if (s.prompt_credit && s.recv.empty()) {
    owed_credit_.push_back(s.id);  // everything received is consumed: credit it soon
  }
}

void HboneConnection::sendOwedCredit() {
  std::vector<StreamId> owed = std::move(owed_credit_);
  owed_credit_.clear();
  std::sort(owed.begin(), owed.end());
  owed.erase(std::unique(owed.begin(), owed.end()), owed.end());
  for (StreamId id : owed) {
    Stream* s = find(id);
    if (s == nullptr || !s->recv.empty() || s->h2_closed) {
      continue;  // gone, or data arrived since: its next drain owes it again
    }
    // What nghttp2 has not credited yet is all consumed.
    int32_t n = nghttp2_session_get_stream_effective_recv_data_length(h2_, id);
    if (n > 0) {
      nghttp2_submit_window_update(h2_, NGHTTP2_FLAG_NONE, id, n);
    }
  }
  (void)produce();
}

void HboneConnection::setPromptCredit(StreamId id) {
  if (Stream* s = find(id)) {
    s->prompt_credit = true;
  }
}

void HboneConnection::consume(StreamId id, size_t n) {
  Stream* s = find(id);
  if (s == nullptr) {
    return;
  }
  n = std::min(n, s->recv.size());
  s->recv.consume(n);
  s->recv.shrinkIfEmpty();  // an idle stream keeps no buffer
  creditConsumed(*s, n);
  releaseIfDone(*s);
  (void)queued();
}

ReadResult HboneConnection::read(StreamId id, absl::Span<uint8_t> out) {
  Stream* s = find(id);
  if (s == nullptr) {
    return {0, true};
  }
  if (!mayDeliver(*s)) {
    return {};
  }
  size_t n = std::min(out.size(), s->recv.size());
  if (n > 0) {  // an empty buffer may have no storage yet: memcpy(_, nullptr, 0) is undefined
    std::memcpy(out.data(), s->recv.data(), n);
  }
  bool eof = s->remote_ended && s->recv.size() == n;
  consume(id, n);  // may release the stream
  return {n, eof};
}

size_t HboneConnection::write(StreamId id, absl::Span<const uint8_t> data) {
  Stream* s = find(id);
  if (s == nullptr || s->local_shutdown || s->h2_closed || s->refused || failed_) {
    return 0;
  }
  size_t room =
      settings_.stream_send_buffer - std::min(settings_.stream_send_buffer, s->send.size());
  size_t n = std::min(room, data.size());
  s->send.append(data.data(), n);
  if (n < data.size()) {
    s->write_blocked = true;
  }
  resumeIfDeferred(*s);
  (void)queued();
  return n;
}

void HboneConnection::shutdownWrite(StreamId id) {
  Stream* s = find(id);
  if (s == nullptr || s->local_shutdown) {
    return;
  }
  s->local_shutdown = true;
  resumeIfDeferred(*s);
  (void)queued();
}

void HboneConnection::resumeIfDeferred(Stream& s) {
  if (s.data_deferred && s.provider_attached && !s.h2_closed) {
    s.data_deferred = false;
    nghttp2_session_resume_data(h2_, s.id);
  }
}

void HboneConnection::discardInput(StreamId id) {
  Stream* s = find(id);
  if (s == nullptr) {
    return;
  }
  s->discard_input = true;
  discardReceived(*s);
  releaseIfDone(*s);
  (void)queued();
}

bool HboneConnection::remoteEnded(StreamId id) const {
  const Stream* s = find(id);
  return s != nullptr && s->remote_ended;
}

void HboneConnection::reset(StreamId id, uint32_t error_code) {
  Stream* s = find(id);
  if (s == nullptr) {
    return;
  }
  discardReceived(*s);
  s->send.clear();
  s->send.shrinkIfEmpty();
  if (!s->h2_closed) {
    nghttp2_submit_rst_stream(h2_, NGHTTP2_FLAG_NONE, id, error_code);
  }
  (void)queued();
}

size_t HboneConnection::bufferedBytes(StreamId id) const {
  const Stream* s = find(id);
  return s == nullptr ? 0 : s->recv.size() + s->send.size();
}

size_t HboneConnection::bufferedBytes() const {
  size_t total = tls_->networkIn().size() + tls_->networkOut().size() + staged_.size();
  for (const auto& [id, s] : streams_) {
    total += s->recv.size() + s->send.size();
  }
  return total;
}

size_t HboneConnection::heldBytes(StreamId id) const {
  const Stream* s = find(id);
  return s == nullptr ? 0 : s->recv.capacity() + s->send.capacity();
}

void HboneConnection::releaseIdleMemory() {
  tls_->networkIn().shrinkIfEmpty();
  tls_->networkOut().shrinkIfEmpty();
  staged_.shrinkIfEmpty();
}

void HboneConnection::discardReceived(Stream& s) {
  size_t n = s.recv.size();
  s.recv.clear();
  s.recv.shrinkIfEmpty();
  creditConsumed(s, n);
}

std::string_view HboneConnection::resumeHeader(StreamId id) const {
  const Stream* s = find(id);
  return s == nullptr ? std::string_view() : std::string_view(s->resume);
}

uint64_t HboneConnection::dataSent(StreamId id) const {
  const Stream* s = find(id);
  return s == nullptr ? 0 : s->data_sent;
}

absl::StatusOr<uint64_t> HboneConnection::confirmedDelivered(StreamId id) const {
  const Stream* s = find(id);
  int32_t window = nghttp2_session_get_stream_remote_window_size(h2_, id);
  if (s == nullptr || window < 0) {
    return absl::NotFoundError(absl::StrCat("stream ", id, " is closed"));
  }
  return confirmedByWindow(
      s->data_sent, window,
      nghttp2_session_get_remote_settings(h2_, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE));
}

void HboneConnection::releaseIfDone(Stream& s) {
  if (s.h2_closed && s.recv.empty()) {
    if (!(server_ && s.refused)) {  // the server app refused it itself and forgot it
      emit({HboneEventType::kClosed, s.id, 0, s.close_error});
    }
    streams_.erase(s.id);
  }
}

nghttp2_data_provider HboneConnection::dataProvider() {
  nghttp2_data_provider provider{};
  provider.read_callback = &HboneConnection::readData;
  return provider;
}

ssize_t HboneConnection::readData(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                                  uint32_t* data_flags, nghttp2_data_source*, void* user_data) {
  auto* self = static_cast<HboneConnection*>(user_data);
  Stream* s = self->find(stream_id);
  if (s == nullptr) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  size_t n = std::min(length, s->send.size());
  if (n > 0) {  // an empty buffer may have no storage yet: memcpy(_, nullptr, 0) is undefined
    std::memcpy(buf, s->send.data(), n);
  }
  s->send.consume(n);
  s->send.shrinkIfEmpty();  // an idle stream keeps no buffer
  s->data_sent += n;
  if (s->write_blocked && s->send.size() <= self->settings_.stream_send_buffer / 2) {
    s->write_blocked = false;
    self->emit({HboneEventType::kWritable, stream_id});
  }
  if (s->send.empty()) {
    if (s->local_shutdown) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
      s->data_deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

int HboneConnection::onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  auto* self = static_cast<HboneConnection*>(user_data);
  if (self->server_ && frame->hd.type == NGHTTP2_HEADERS &&
      frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    auto stream = std::make_unique<Stream>();
    stream->id = frame->hd.stream_id;
    self->streams_[stream->id] = std::move(stream);
  }
  return 0;
}

int HboneConnection::onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                              size_t namelen, const uint8_t* value, size_t valuelen,
                              uint8_t /*flags*/, void* user_data) {
  auto* self = static_cast<HboneConnection*>(user_data);
  Stream* s = self->find(frame->hd.stream_id);
  if (s == nullptr) {
    return 0;
  }
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == kResumeHeader) {
    // One short value: anything else is not a resumption anyone can rely on.
    s->resume = s->resume.empty() && v.size() <= 128 ? std::string(v) : "!";
    return 0;
  }
  if (self->server_) {
    if (n == ":method") {
      s->method.assign(v);
    } else if (n == ":authority") {
      s->authority_text.assign(v);
    } else if (n == kBaggageHeader && !s->baggage_oversized) {
      // Bounded: a header beyond W3C Baggage's limit is dropped whole, not kept in part.
      if (s->baggage.size() + 1 + v.size() > kMaxBaggageBytes) {
        s->baggage.clear();
        s->baggage_oversized = true;
      } else {
        s->baggage.append(s->baggage.empty() ? "" : ",").append(v);
      }
    }
  } else if (n == ":status") {
    int status = 0;
    for (char c : v) {
      status = status * 10 + (c - '0');  // nghttp2 already checked: three digits
    }
    s->status = status;
  }
  return 0;
}

int HboneConnection::onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  auto* self = static_cast<HboneConnection*>(user_data);
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
      Stream* s = self->find(frame->hd.stream_id);
      if (s == nullptr) {
        break;
      }
      if (self->server_ && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        self->onRequestHeaders(*s);
      } else if (!self->server_ && frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        self->onResponseHeaders(*s);
      }
      s = self->find(frame->hd.stream_id);  // the hooks may have refused it
      if (s != nullptr && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
        self->onRemoteEnd(*s);
      }
      break;
    }
    case NGHTTP2_DATA:
      if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
        if (Stream* s = self->find(frame->hd.stream_id)) {
          self->onRemoteEnd(*s);
        }
      }
      break;
    case NGHTTP2_WINDOW_UPDATE:
      if (frame->hd.stream_id != 0) {
        Stream* s = self->find(frame->hd.stream_id);
        if (s != nullptr && s->prompt_credit) {
          self->emit({HboneEventType::kWritable, s->id});  // the sender's ledger can shrink
        }
      }
      break;
    case NGHTTP2_GOAWAY:
      self->goaway_received_ = true;
      self->emit({HboneEventType::kGoaway, 0, 0, frame->goaway.error_code});
      break;
    default:
      break;
  }
  return 0;
}

void HboneConnection::onRemoteEnd(Stream& s) {
  s.remote_ended = true;
  if (mayDeliver(s) && s.recv.empty()) {
    emit({HboneEventType::kReadable, s.id});
  }
}

int HboneConnection::onDataChunk(nghttp2_session*, uint8_t /*flags*/, int32_t stream_id,
                                 const uint8_t* data, size_t len, void* user_data) {
  auto* self = static_cast<HboneConnection*>(user_data);
  Stream* s = self->find(stream_id);
  if (s == nullptr || s->refused || s->discard_input) {
    // Nobody will read it: give the credit straight back.
    nghttp2_session_consume(self->h2_, stream_id, len);
    return 0;
  }
  bool was_empty = s->recv.empty();
  s->recv.append(data, len);
  // Edge-triggered: one event when the buffer becomes non-empty; the reader drains it.
  if (was_empty && self->mayDeliver(*s)) {
    self->emit({HboneEventType::kReadable, stream_id});
  }
  return 0;
}

int HboneConnection::onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                                   void* user_data) {
  auto* self = static_cast<HboneConnection*>(user_data);
  Stream* s = self->find(stream_id);
  if (s == nullptr) {
    return 0;
  }
  s->h2_closed = true;
  s->close_error = error_code;
  if (error_code != NGHTTP2_NO_ERROR || !self->mayDeliver(*s)) {
    self->discardReceived(*s);
  }
  // A clean close with unread data waits for the reader (releaseIfDone from consume()).
  self->releaseIfDone(*s);
  return 0;
}

}  // namespace ferry::hbone
