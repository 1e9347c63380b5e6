// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Drives userspace/hbone's sans-IO connections from a worker's event loop.
//
// TunnelConnection owns the TCP socket of one HBONE connection (client or server side): it
// moves ciphertext between the socket and the connection's buffers, dispatches the
// connection's events to the StreamBridge of each stream, and closes itself when the
// connection is finished.
//
// StreamBridge joins one plain TCP socket (the app's, or the connection to the app) with one
// HBONE stream. Backpressure both ways: bytes from the socket wait in a bounded Buffer until the
// stream takes them (write() accepts only what its bounded send buffer holds; kWritable says
// when to retry), and bytes from the stream are consumed only once the socket took them, which
// is what credits the HTTP/2 window back to the sender. Half-close maps FIN <-> END_STREAM.
// Both sockets are io::Connections, read into and sent from the HBONE connection's and the
// bridge's own buffers (no copy in between).

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/drain/stream_state.h"
#include "agent/io/connection.h"
#include "agent/io/event_loop.h"
#include "agent/telemetry/telemetry.h"
#include "agent/worker_context.h"
#include "hbone/connection.h"
#include "net/byte_buffer.h"

namespace ferry::agent {

// What one stream of a TunnelConnection hands its events to: a StreamBridge (a socket joined
// with the stream) or the inbound HTTP relay, which reads and writes the stream itself
// (agent/http/relay_end.h).
class TunnelStream {
 public:
  virtual ~TunnelStream() = default;
  virtual void onResponse(int /*status*/) {}  // client: the server's answer
  virtual void onTunnelReadable() = 0;
  virtual void onTunnelWritable() = 0;
  // The stream is gone (detached already): `error_code` 0 after a clean close.
  virtual void onTunnelClosed(uint32_t error_code) = 0;
  virtual void onTunnelFailed() = 0;  // the whole connection went away (detached already)
  // Revoked or refused by its connection's owner: reset both sides. The owner resets the
  // stream on the wire.
  virtual void abort() = 0;
};

// How long after a resumable stream went quiet its peer gets the window credit it is owed.
inline constexpr std::chrono::milliseconds kOwedCreditDelay{50};

class TunnelConnection : public Deferred {
 public:
  TunnelConnection(WorkerContext& ctx, int fd, bool connecting, bool client);
  ~TunnelConnection() override;

  hbone::HboneConnection& conn() { return *conn_; }
  bool closed() const { return closed_; }
  // Call after any stream-side call on conn(): dispatches events, writes output, updates
  // interest, and closes the connection once it is finished. Re-entrant calls coalesce.
  void flush();
  // flush() after the current event batch, once however often asked: for ends that write and read
  // streams from their owners' handlers (agent/http/upstream_link.h), where a flush's events
  // would call back into an owner in the middle of its work; and for the relays' passes, so that
  // what every stream queued in one round leaves in one TLS record and one socket write. Asked
  // during a flush, that flush dispatches and writes once more instead.
  void flushSoon();
  void attach(hbone::StreamId id, TunnelStream* stream) { bridges_[id] = stream; }
  void detach(hbone::StreamId id) { bridges_.erase(id); }
  size_t bridgeCount() const { return bridges_.size(); }
  void onEvents(uint32_t events);
  // Reads and dispatches what the socket holds now, without waiting for the loop: before a
  // hand-over, so that streams whose end has already arrived end here instead of being handed
  // to a successor that the peer, having closed them, no longer knows.
  void readPending();
  void close(const std::string& why);
  // The local pod this connection serves (the source pod of a pooled client connection, the
  // destination pod of an inbound one).
  virtual std::string localPodUid() const = 0;

 protected:
  void setConnection(std::unique_ptr<hbone::HboneConnection> conn);
  virtual void onHandshakeDone() {}
  virtual void onStreamOpened(hbone::StreamId) {}
  virtual void afterEvents() {}  // e.g. start deferred app connects, idle timers
  virtual void onClosing() {}    // leave the pool

  WorkerContext& ctx_;
  Connection sock_;
  bool connecting_;
  bool client_;
  std::unique_ptr<hbone::HboneConnection> conn_;
  std::map<hbone::StreamId, TunnelStream*> bridges_;

 private:
  void dispatch();
  bool writeOut();
  void updateInterest();

  bool closed_ = false;
  bool eof_ = false;
  bool in_flush_ = false;
  bool flush_again_ = false;
  bool want_write_ = false;
  EventLoop::TimerId credit_timer_ = 0;  // sends the credit resumable streams owe
  bool flush_soon_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for flushSoon()
  std::vector<hbone::HboneEvent> events_;
};

// The resumable side of a stream (docs/upgrades.md): its token and the retransmission ledger of
// the direction this side sends. Offsets are the stream's from its first byte, across resumes.
// Kept small (every cross-node L4 connection has one on each node): who the stream is for, the
// identities, the pod, comes from the tunnel when the stream is handed on (detach()).
struct ResumableSide {
  hbone::ResumeToken token;
  HandedStream::Role role = HandedStream::Role::kClient;
  std::string authority;  // the CONNECT :authority (a resume's; with the peer, its binding)
  hbone::RetransmitLedger ledger;
  uint64_t delivered_base = 0;  // bytes given to the app before this bridge (a resumed stream)
  uint64_t stream_base = 0;     // ledger offset of this HTTP/2 stream's first DATA byte
  size_t unrecorded = 0;        // bytes at the front of the bridge's buffer already in the ledger
  bool accepted = false;        // the peer accepted the offer (or this is a resume)
};

class StreamBridge : public Deferred, public TunnelStream {
 public:
  // `fd_connecting`: fd is a connect in progress (server side, to the app); the bridge calls
  // `on_connected(ok)` when it completes, and moves no bytes before.
  StreamBridge(WorkerContext& ctx, TunnelConnection* tunnel, hbone::StreamId id, int fd,
               bool fd_connecting, bool client);
  ~StreamBridge() override;

  void start();  // registers the socket with the loop
  void setOnConnected(std::function<void(bool ok)> fn) { on_connected_ = std::move(fn); }
  void setOpened() { opened_ = true; }
  // Closed with this stream's byte counts when the bridge finishes.
  void setTelemetry(ConnectionTelemetry t) { telemetry_ = std::move(t); }

  void onEvents(uint32_t events);  // the plain socket
  void onResponse(int status) override;
  void onTunnelReadable() override { pump(); }
  void onTunnelWritable() override { pump(); }
  void onTunnelClosed(uint32_t error_code) override;
  void onTunnelFailed() override;
  void abort() override;  // reset both sides (e.g. refused before opening)

  // ---- resumption (docs/upgrades.md) ----
  // Client: the CONNECT offered `side`; bytes are recorded from the first, and the answer's
  // `ferry-resume` says whether the stream stays resumable. Call before start().
  void offerResume(ResumableSide side) {
    resume_ = std::make_unique<ResumableSide>(std::move(side));
  }
  // Server: the offer was accepted (the answer carries it).
  void acceptResume(ResumableSide side);
  // Client: this stream is a resume of `stream`, waiting for the answer (no byte moves before);
  // attempt `attempt` of those resumeClientStream() makes until `deadline`.
  void resumeOf(HandedStream stream, std::chrono::steady_clock::time_point deadline, int attempt);
  // Server: this stream resumes `stream`, whose peer has been given `peer_delivered` bytes.
  // False (the stream is to be refused) when the offsets cannot be reconciled.
  bool continueFrom(HandedStream stream, uint64_t peer_delivered);
  bool resumable() const { return resume_ != nullptr && resume_->accepted; }
  TunnelConnection* tunnel() const { return tunnel_; }
  // This side's END_STREAM went less than `ago` ago: the peer may be ending the stream, and
  // forgetting it, at any moment (a hand-over waits for it instead; takeStreamsForSuccessor).
  bool endSentWithin(std::chrono::milliseconds ago) const {
    return tunnel_shut_ && std::chrono::steady_clock::now() - end_sent_at_ < ago;
  }
  // Client, waiting for the answer to a resume: gives the stream up to a successor agent (the
  // resume stream is reset with kSuspendErrorCode, the bridge ends without the socket).
  HandedStream abandonResume();
  // Hands the stream on: the stream is reset on the wire with `code` (kSuspendErrorCode: "it
  // will be resumed"), the app socket and the state go with the result, and the bridge ends
  // without touching the socket. Only for resumable() bridges.
  HandedStream detach(uint32_t code);

 private:
  void pump();
  void recordSent(size_t n);
  bool confirmFromWindow();
  void onResumeAnswer(int status);
  void suspend();
  void endDetached();
  void markResumable();
  void unmarkResumable();
  void reportLedger();
  void resetStream();
  void finish(bool reset);
  void updateInterest();

  WorkerContext& ctx_;
  TunnelConnection* tunnel_;
  hbone::StreamId id_;
  Connection sock_;
  bool client_;
  net::ByteBuffer up_;  // socket -> stream
  bool fd_connecting_;
  bool opened_;
  bool fd_eof_ = false;
  bool fd_blocked_ = false;
  bool tunnel_shut_ = false;
  std::chrono::steady_clock::time_point end_sent_at_{};
  bool closed_clean_ = false;  // the stream closed with NO_ERROR: its end goes to the app
  bool done_ = false;
  uint64_t bytes_up_ = 0;
  uint64_t bytes_down_ = 0;
  EventLoop::TimerId connect_timer_ = 0;
  std::function<void(bool)> on_connected_;
  ConnectionTelemetry telemetry_;
  std::unique_ptr<ResumableSide> resume_;
  // Client: waiting for the answer to a resume (only in an upgrade: allocated then, so an idle
  // bridge does not carry its 320 bytes).
  std::unique_ptr<HandedStream> resuming_;
  std::chrono::steady_clock::time_point resume_deadline_{};
  int resume_attempt_ = 0;
  int64_t ledger_reported_ = 0;  // this bridge's part of the resume_ledger_bytes gauge
};

// Every stream of `ctx` a successor takes over: resumable ones detached, resumes in flight given
// up, client streams waiting to ask again. Runs on the worker's loop.
std::vector<HandedStream> takeStreamsForSuccessor(WorkerContext& ctx);

// Client side: resumes `stream` on the destination agent (a stream handed over by a predecessor,
// or one the destination's agent suspended to hand it over): a resume CONNECT on a pooled
// connection; 503 "retry" is asked again with backoff until `deadline`; any other refusal, or
// the deadline, resets the app socket.
void resumeClientStream(WorkerContext& ctx, HandedStream stream,
                        std::chrono::steady_clock::time_point deadline, int attempt = 0);

}  // namespace ferry::agent
