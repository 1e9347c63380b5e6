// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// HBONE (HTTP/2 CONNECT over mutual TLS 1.3) without sockets. The agent's event loop owns the
// socket and moves bytes:
//
//   socket readable:  read into conn.networkIn().prepare(n), commit(), then onNetworkInput()
//   socket writable:  write conn.networkOut().readable(), consume() what was written,
//                     then onNetworkOutputDrained() (produces more if it had stopped)
//   after any call:   write networkOut() if non-empty; takeEvents() and act on them
//
// Streams are read and written with read()/peek()+consume() and write(). Flow control is end
// to end: received bytes are credited back to the peer (WINDOW_UPDATE) only when the app side
// consumed them, and write() accepts only what fits in a bounded per-stream buffer, so a slow
// reader on either side stalls the writer instead of growing memory.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "hbone/authority.h"
#include "net/byte_buffer.h"
#include "tls/session.h"

namespace ferry::hbone {

using StreamId = int32_t;

struct HboneSettings {
  // Per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE): at ~1 ms cross-node RTT, 1 MiB
  // keeps a single stream at ~1 GB/s; it also bounds what one stream can buffer here.
  uint32_t stream_window = 1u << 20;
  // Connection receive window: bounds everything one connection's streams can buffer here.
  uint32_t connection_window = 16u << 20;
  // SETTINGS_MAX_CONCURRENT_STREAMS we allow the peer (server side); pools open another
  // connection beyond it.
  uint32_t max_concurrent_streams = 100;
  // Bytes the app may queue per stream before write() accepts less than offered.
  size_t stream_send_buffer = 256u << 10;
  // Ciphertext waiting for the socket above which no more frames are produced.
  size_t output_high_water = 512u << 10;
  // Stream calls (write, shutdownWrite, consume, read, discardInput, reset, openStream, respond)
  // only queue their frames, and produce() encodes them: an owner that writes its socket once
  // per event-loop round sends what every stream queued in that round in as few TLS records and
  // socket writes as fit, instead of one of each per call. Off: each call encodes at once.
  bool batch_output = false;
};

enum class HboneEventType {
  kHandshakeDone,  // TLS is up; peer() is valid
  kStreamOpened,   // server: a CONNECT stream passed validation and the accept callback
  kResponse,       // client: the server answered the CONNECT (`status`: 200 or a refusal)
  kReadable,       // data or end of stream is ready for read()
  kWritable,       // a write() that had accepted less now has room again
  kClosed,         // the stream is gone; `error_code` is 0 after a clean close (all data read)
  kGoaway,         // the peer is draining: open no new streams on this connection
};

struct HboneEvent {
  HboneEventType type;
  StreamId stream = 0;
  int status = 0;           // kResponse
  uint32_t error_code = 0;  // kClosed (HTTP/2 error code), kGoaway
};

struct ReadResult {
  size_t bytes = 0;
  bool eof = false;  // the peer ended the stream and everything has been read
};

class HboneConnection {
 public:
  virtual ~HboneConnection();
  HboneConnection(const HboneConnection&) = delete;
  HboneConnection& operator=(const HboneConnection&) = delete;

  // ---- network side ----
  net::ByteBuffer& networkIn() { return tls_->networkIn(); }
  net::ByteBuffer& networkOut() { return tls_->networkOut(); }
  // Processes everything in networkIn(). An error is fatal for the connection: write what is
  // left in networkOut() (an alert or GOAWAY) if possible, then close the socket.
  absl::Status onNetworkInput();
  // Call after consuming from networkOut(): resumes frame production paused at high water.
  absl::Status onNetworkOutputDrained();
  // Encodes the frames queued so far into networkOut() (up to the high water). Needed only with
  // HboneSettings::batch_output, before networkOut() is written; an error fails the connection.
  absl::Status produce();
  // The peer closed the socket (read returned 0).
  void onNetworkEof();

  // ---- state ----
  bool handshakeDone() const { return tls_->handshakeDone(); }
  const tls::SpiffeId& peer() const { return tls_->peer(); }
  const tls::SpiffeId& local() const { return tls_->local(); }
  size_t activeStreams() const { return streams_.size(); }
  bool goawayReceived() const { return goaway_received_; }
  // Why the connection failed (OK while it has not).
  const absl::Status& error() const { return error_; }
  // Nothing more will happen: drained after GOAWAY, failed, or the peer went away. Close the
  // socket once networkOut() is empty.
  bool finished() const;
  // Graceful drain: GOAWAY now; streams in flight finish, new ones are refused.
  void drain();
  // Server side, before drain(): a GOAWAY naming no last stream (RFC 9113 6.8's shutdown
  // notice), so the peer opens no new stream here while streams already on the wire are still
  // taken; drain() about a round trip later refuses nothing the peer sent in good faith.
  void announceDrain();
  // Frees empty connection-level buffers; for pooled connections that went idle.
  void releaseIdleMemory();

  // Events wait for takeEvents(). produce() can add some (a stream whose END_STREAM it sent
  // closes), so an owner that produces after taking them looks again.
  bool hasEvents() const { return !events_.empty(); }
  // Moves pending events into `out` (cleared first). Swap-based: a caller that keeps its
  // vector allocates nothing in steady state.
  void takeEvents(std::vector<HboneEvent>& out);

  // ---- streams ----
  // Bytes received and not yet consumed. peek() is valid until the next call on this object.
  absl::Span<const uint8_t> peek(StreamId id) const;
  void consume(StreamId id, size_t n);
  ReadResult read(StreamId id, absl::Span<uint8_t> out);
  // Queues up to the free space of the stream's send buffer; returns how much it took. When
  // that is less than offered, a kWritable event follows once there is room again.
  size_t write(StreamId id, absl::Span<const uint8_t> data);
  // Half-close: END_STREAM after what is queued has been sent.
  void shutdownWrite(StreamId id);
  // The local reader is gone but the stream ends gracefully: what it has received and what the
  // peer still sends is dropped and credited back (the peer is never stalled), while what is
  // queued goes out before END_STREAM (call shutdownWrite() too). A socket's close() with
  // unread bytes, without the reset.
  void discardInput(StreamId id);
  // END_STREAM received (there may still be bytes to read before the end).
  bool remoteEnded(StreamId id) const;
  // Abort: RST_STREAM with `error_code` (CANCEL by default); buffered data is dropped.
  void reset(StreamId id, uint32_t error_code = NGHTTP2_CANCEL);
  // What is buffered for the stream in both directions (for limits, metrics and tests).
  size_t bufferedBytes(StreamId id) const;
  // Everything this connection holds: both directions of every stream plus TLS buffers.
  size_t bufferedBytes() const;
  // Memory the stream's buffers hold (capacity, not content): 0 once both directions are
  // drained, so an idle stream costs its bookkeeping only.
  size_t heldBytes(StreamId id) const;
  bool hasStream(StreamId id) const { return streams_.contains(id); }
  // The `ferry-resume` header the peer sent for the stream ("" when none; resume.h parses it).
  std::string_view resumeHeader(StreamId id) const;
  // Resumable streams (resume.h): from now on, whenever the stream's receive buffer drains,
  // every consumed byte not credited yet is owed to the peer, and sendOwedCredit() credits it
  // (a stream WINDOW_UPDATE each) instead of waiting for HTTP/2's half-window step, so the
  // peer's retransmission ledger empties once the stream goes quiet. The caller sends owed
  // credit a little later (a timer), not per read: a busy stream is credited by the half-window
  // steps meanwhile, and a request/response stream pays no extra frame per message. A stream
  // WINDOW_UPDATE received for such a stream is reported as kWritable (the sender's ledger can
  // shrink).
  void setPromptCredit(StreamId id);
  bool creditOwed() const { return !owed_credit_.empty(); }
  void sendOwedCredit();
  // DATA payload bytes sent on the stream so far.
  uint64_t dataSent(StreamId id) const;
  // Of those, the bytes the peer credited back: delivered to its app (resume.h,
  // confirmedByWindow). An error once nghttp2 forgot the stream or the window is inconsistent.
  absl::StatusOr<uint64_t> confirmedDelivered(StreamId id) const;

 protected:
  struct Stream {
    StreamId id = 0;
    net::ByteBuffer recv;
    net::ByteBuffer send;
    std::string method;
    std::string authority_text;
    std::string baggage;  // server: the request's baggage header(s), joined with ','
    bool baggage_oversized = false;
    std::optional<Authority> authority;
    int status = 0;               // client: response status; server: status we answered
    bool remote_ended = false;    // END_STREAM received
    bool local_shutdown = false;  // app shut its write side
    bool data_deferred = false;   // nghttp2 waits for resume_data
    bool write_blocked = false;   // write() took less than offered
    bool provider_attached = false;
    bool refused = false;        // answered with a refusal (either side); data is dropped
    bool discard_input = false;  // discardInput(): received data is dropped and credited
    bool h2_closed = false;
    uint32_t close_error = 0;
    uint64_t data_sent = 0;  // DATA payload handed to nghttp2
    // `ferry-resume` (resume.h) as received: the request's on the server, the response's on
    // the client; "!" when it came more than once or too long (parses as no resumption).
    std::string resume;
    std::string resume_answer;  // server: sent with the answer
    bool prompt_credit = false;
  };

  HboneConnection(std::unique_ptr<tls::TlsSession> tls, HboneSettings settings, bool server);
  absl::Status initSession();
  Stream* find(StreamId id) const;
  void emit(HboneEvent event) { events_.push_back(event); }
  // After a stream call queued frames: encodes them now, or leaves them to the owner's
  // produce() with batch_output.
  absl::Status queued();
  absl::Status flushStaged();
  absl::Status fail(absl::Status status);
  void failAllStreams(uint32_t error_code);
  void creditConsumed(Stream& s, size_t n);
  void resumeIfDeferred(Stream& s);
  void onRemoteEnd(Stream& s);
  // Attaches the DATA provider (client: with the request, server: with the 200).
  nghttp2_data_provider dataProvider();
  void releaseIfDone(Stream& s);
  void discardReceived(Stream& s);

  // Role hooks.
  virtual void onRequestHeaders(Stream& s) = 0;
  virtual void onResponseHeaders(Stream& s) = 0;
  virtual bool mayDeliver(const Stream& s) const = 0;

  std::unique_ptr<tls::TlsSession> tls_;
  HboneSettings settings_;
  const bool server_;
  nghttp2_session* h2_ = nullptr;
  absl::flat_hash_map<StreamId, std::unique_ptr<Stream>> streams_;
  std::vector<StreamId> owed_credit_;  // prompt-credit streams drained since sendOwedCredit()
  std::vector<HboneEvent> events_;
  bool handshake_reported_ = false;
  bool goaway_received_ = false;
  bool failed_ = false;
  bool peer_gone_ = false;
  absl::Status error_;
  net::ByteBuffer staged_;  // small frames coalesced into one TLS record

 private:
  static ssize_t readData(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source*, void* user_data);
  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user_data);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int onDataChunk(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                         size_t len, void* user_data);
  static int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                           void* user_data);
};

}  // namespace ferry::hbone
