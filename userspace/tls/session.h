// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// One TLS connection with no socket: the caller moves ciphertext between the socket and
// networkIn()/networkOut(), and plaintext through read()/write(). OpenSSL reads and writes
// those two buffers directly through a custom BIO, so ciphertext is never copied twice.

#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "net/byte_buffer.h"
#include "tls/context.h"

namespace ferry::tls {

class TlsSession {
 public:
  static absl::StatusOr<std::unique_ptr<TlsSession>> create(
      std::shared_ptr<const TlsContext> ctx, TlsRole role,
      std::optional<SpiffeId> expected_peer = std::nullopt);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Ciphertext from the peer: append (prepare/commit) what the socket delivered.
  net::ByteBuffer& networkIn() { return in_; }
  // Ciphertext for the peer: write readable() to the socket, then consume() what was written.
  net::ByteBuffer& networkOut() { return out_; }

  // Advances the handshake with whatever input is queued. OK while in progress (more input
  // needed) or done; an error is final and names the reason (a refused peer certificate, an
  // alert from the peer, ...). Any alert for the peer is left in networkOut().
  absl::Status handshake();
  bool handshakeDone() const { return handshake_done_; }
  // The verified peer identity (valid once the handshake is done).
  const SpiffeId& peer() const { return peer_; }
  const SpiffeId& local() const { return ctx_->identity(); }
  // For logs and tests: the negotiated ALPN protocol and cipher suite.
  std::string alpn() const;
  std::string cipherSuite() const;

  // Decrypts into `out`. Returns the bytes produced; 0 means more ciphertext is needed or the
  // peer closed (see peerClosed()). Errors are final.
  absl::StatusOr<size_t> read(absl::Span<uint8_t> out);
  // Encrypts all of `data` into networkOut().
  absl::Status write(absl::Span<const uint8_t> data);
  // Queues close_notify.
  void shutdown();
  bool peerClosed() const { return peer_closed_; }

 private:
  TlsSession() = default;
  absl::Status failure(int ret, absl::string_view what);
  static int bioWrite(BIO* bio, const char* data, size_t len, size_t* written);
  static int bioRead(BIO* bio, char* data, size_t len, size_t* read);
  static long bioCtrl(BIO* bio, int cmd, long num, void* ptr);
  static const BIO_METHOD* bioMethod();

  std::shared_ptr<const TlsContext> ctx_;
  UniqueSsl ssl_;
  net::ByteBuffer in_;
  net::ByteBuffer out_;
  SpiffeId peer_;
  bool handshake_done_ = false;
  bool peer_closed_ = false;
  bool failed_ = false;
};

}  // namespace ferry::tls
