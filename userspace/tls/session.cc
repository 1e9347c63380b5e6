// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "tls/session.h"

#include <openssl/err.h>

#include "absl/strings/str_cat.h"

namespace ferry::tls {

const BIO_METHOD* TlsSession::bioMethod() {
  // Created once and never freed: OpenSSL keeps pointers to it in every live BIO.
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ferry-buffers");
    BIO_meth_set_write_ex(m, &TlsSession::bioWrite);
    BIO_meth_set_read_ex(m, &TlsSession::bioRead);
    BIO_meth_set_ctrl(m, &TlsSession::bioCtrl);
    BIO_meth_set_create(m, [](BIO* bio) {
      BIO_set_init(bio, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

int TlsSession::bioWrite(BIO* bio, const char* data, size_t len, size_t* written) {
  auto* self = static_cast<TlsSession*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  self->out_.append(data, len);
  *written = len;
  return 1;
}

int TlsSession::bioRead(BIO* bio, char* data, size_t len, size_t* read) {
  auto* self = static_cast<TlsSession*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (self->in_.empty()) {
    BIO_set_retry_read(bio);
    *read = 0;
    return 0;
  }
  size_t n = std::min(len, self->in_.size());
  std::memcpy(data, self->in_.data(), n);
  self->in_.consume(n);
  *read = n;
  return 1;
}

long TlsSession::bioCtrl(BIO* bio, int cmd, long /*num*/, void* /*ptr*/) {
  auto* self = static_cast<TlsSession*>(BIO_get_data(bio));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING:
      return static_cast<long>(self->in_.size());
    case BIO_CTRL_WPENDING:
      return static_cast<long>(self->out_.size());
    default:
      return 0;
  }
}

absl::StatusOr<std::unique_ptr<TlsSession>> TlsSession::create(
    std::shared_ptr<const TlsContext> ctx, TlsRole role, std::optional<SpiffeId> expected_peer) {
  if (!ctx) {
    return absl::InvalidArgumentError("TLS session needs a context");
  }
  absl::StatusOr<UniqueSsl> ssl = ctx->newSsl(role, std::move(expected_peer));
  if (!ssl.ok()) {
    return ssl.status();
  }
  std::unique_ptr<TlsSession> session(new TlsSession());
  BIO* bio = BIO_new(bioMethod());
  if (bio == nullptr) {
    return opensslError("cannot create TLS buffer BIO");
  }
  BIO_set_data(bio, session.get());
  SSL_set_bio(ssl->get(), bio, bio);  // one BIO both ways: SSL takes the single reference
  session->ctx_ = std::move(ctx);
  session->ssl_ = std::move(*ssl);
  return session;
}

TlsSession::~TlsSession() = default;

absl::Status TlsSession::failure(int ret, absl::string_view what) {
  failed_ = true;
  absl::StatusOr<SpiffeId> verdict = peerIdentity(ssl_.get());
  if (verdict.status().code() == absl::StatusCode::kPermissionDenied) {
    drainOpensslErrors();
    return verdict.status();
  }
  int err = SSL_get_error(ssl_.get(), ret);
  if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL) {
    std::string detail = drainOpensslErrors();
    return absl::UnavailableError(
        absl::StrCat(what, ": ", detail.empty() ? "unexpected end of stream" : detail));
  }
  return absl::InternalError(absl::StrCat(what, ": SSL error ", err));
}

absl::Status TlsSession::handshake() {
  if (failed_) {
    return absl::FailedPreconditionError("TLS session already failed");
  }
  if (handshake_done_) {
    return absl::OkStatus();
  }
  int ret = SSL_do_handshake(ssl_.get());
  if (ret == 1) {
    absl::StatusOr<SpiffeId> peer = peerIdentity(ssl_.get());
    if (!peer.ok()) {
      failed_ = true;
      return peer.status();
    }
    peer_ = std::move(*peer);
    handshake_done_ = true;
    return absl::OkStatus();
  }
  int err = SSL_get_error(ssl_.get(), ret);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    return absl::OkStatus();
  }
  return failure(ret, "TLS handshake failed");
}

absl::StatusOr<size_t> TlsSession::read(absl::Span<uint8_t> out) {
  if (failed_) {
    return absl::FailedPreconditionError("TLS session already failed");
  }
  if (peer_closed_ || out.empty()) {
    return 0;
  }
  size_t n = 0;
  int ret = SSL_read_ex(ssl_.get(), out.data(), out.size(), &n);
  if (ret == 1) {
    return n;
  }
  int err = SSL_get_error(ssl_.get(), ret);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    return 0;
  }
  if (err == SSL_ERROR_ZERO_RETURN) {
    peer_closed_ = true;
    return 0;
  }
  return failure(ret, "TLS read failed");
}

absl::Status TlsSession::write(absl::Span<const uint8_t> data) {
  if (failed_) {
    return absl::FailedPreconditionError("TLS session already failed");
  }
  if (data.empty()) {
    return absl::OkStatus();
  }
  size_t n = 0;
  // The BIO always accepts everything, so SSL_write_ex never stops part way.
  int ret = SSL_write_ex(ssl_.get(), data.data(), data.size(), &n);
  if (ret == 1 && n == data.size()) {
    return absl::OkStatus();
  }
  return failure(ret, "TLS write failed");
}

std::string TlsSession::alpn() const {
  const unsigned char* proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_.get(), &proto, &len);
  return std::string(reinterpret_cast<const char*>(proto), proto != nullptr ? len : 0);
}

std::string TlsSession::cipherSuite() const {
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_.get());
  return cipher != nullptr ? SSL_CIPHER_get_name(cipher) : "";
}

void TlsSession::shutdown() {
  if (!failed_ && handshake_done_) {
    SSL_shutdown(ssl_.get());
    drainOpensslErrors();
  }
}

}  // namespace ferry::tls
