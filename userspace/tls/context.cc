// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "tls/context.h"

#include <openssl/err.h>

#include <mutex>

#include "absl/strings/str_cat.h"
#include "tls/x509.h"

namespace ferry::tls {
namespace {

// AES-128-GCM first: with AES-NI it is the cheapest AEAD and 128 bits is ample for session keys.
constexpr char kCipherSuites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr char kGroups[] = "X25519:P-256";
constexpr unsigned char kAlpnH2[] = {2, 'h', '2'};

// Per-connection verification state, hung off the SSL as ex_data. It holds the context so a
// rotation that drops the last other reference cannot free it under a running handshake.
struct PeerState {
  std::shared_ptr<const TlsContext> ctx;
  std::optional<SpiffeId> expected_peer;
  absl::StatusOr<SpiffeId> result = absl::UnavailableError("peer not verified yet");
};

void freePeerState(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
                   void* /*argp*/) {
  delete static_cast<PeerState*>(ptr);
}

int peerStateIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, freePeerState);
  return index;
}

int selectAlpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_len,
               const unsigned char* in, unsigned int in_len, void* /*arg*/) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_len, kAlpnH2, sizeof(kAlpnH2), in, in_len) !=
      OPENSSL_NPN_NEGOTIATED) {
    // HBONE is HTTP/2 only; a client that cannot speak it gets a clear alert, not garbage.
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

absl::StatusOr<TlsIdentity> TlsIdentity::fromParts(UniquePkey key, std::vector<UniqueX509> chain) {
  if (chain.empty()) {
    return absl::InvalidArgumentError("identity has no certificate");
  }
  if (!key || X509_check_private_key(chain[0].get(), key.get()) != 1) {
    drainOpensslErrors();
    return absl::InvalidArgumentError("private key does not match the leaf certificate");
  }
  absl::StatusOr<CertInfo> info = inspectCert(chain[0].get());
  if (!info.ok()) {
    return info.status();
  }
  absl::StatusOr<SpiffeId> id = info->spiffeId();
  if (!id.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("leaf certificate is not an SVID: ", id.status().message()));
  }
  return TlsIdentity{std::move(*id), std::move(key), std::move(chain)};
}

absl::StatusOr<TlsIdentity> TlsIdentity::fromPem(absl::string_view chain_pem,
                                                 absl::string_view key_pem) {
  absl::StatusOr<std::vector<UniqueX509>> chain = certChainFromPem(chain_pem);
  if (!chain.ok()) {
    return chain.status();
  }
  absl::StatusOr<UniquePkey> key = keyFromPem(key_pem);
  if (!key.ok()) {
    return key.status();
  }
  return fromParts(std::move(*key), std::move(*chain));
}

TlsIdentity TlsIdentity::share() const {
  TlsIdentity copy;
  copy.id = id;
  if (key) {
    EVP_PKEY_up_ref(key.get());
    copy.key.reset(key.get());
  }
  for (const UniqueX509& cert : chain) {
    copy.chain.push_back(shareCert(cert.get()));
  }
  return copy;
}

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::create(
    const TlsIdentity& identity, std::shared_ptr<const TrustBundle> bundle,
    TlsContextOptions options) {
  if (!bundle) {
    return absl::InvalidArgumentError("TLS context needs a trust bundle");
  }
  if (identity.chain.empty() || !identity.key) {
    return absl::InvalidArgumentError("TLS context needs a certificate and a key");
  }
  if (absl::Status s = validateTrustDomain(options.trust_domain); !s.ok()) {
    return s;
  }
  absl::StatusOr<CertInfo> leaf = inspectCert(identity.chain[0].get());
  if (!leaf.ok()) {
    return leaf.status();
  }
  std::shared_ptr<TlsContext> ctx(new TlsContext());
  ctx->identity_ = identity.id;
  ctx->not_after_ = leaf->not_after;
  ctx->bundle_ = std::move(bundle);
  ctx->options_ = std::move(options);
  ctx->ctx_.reset(SSL_CTX_new(TLS_method()));
  SSL_CTX* raw = ctx->ctx_.get();
  if (raw == nullptr || SSL_CTX_set_min_proto_version(raw, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(raw, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_ciphersuites(raw, kCipherSuites) != 1 ||
      SSL_CTX_set1_groups_list(raw, kGroups) != 1) {
    return opensslError("cannot configure TLS 1.3 context");
  }
  SSL_CTX_set_options(raw, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  // HBONE connections are long-lived and pooled; resumption tickets would only cost a write.
  SSL_CTX_set_num_tickets(raw, 0);
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate(raw, identity.chain[0].get()) != 1 ||
      SSL_CTX_use_PrivateKey(raw, identity.key.get()) != 1 || SSL_CTX_check_private_key(raw) != 1) {
    return opensslError("cannot install certificate and key");
  }
  for (size_t i = 1; i < identity.chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(raw, identity.chain[i].get()) != 1) {
      return opensslError("cannot install intermediate certificate");
    }
  }
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  // Replaces OpenSSL's chain verification with verifySvid (chain + SPIFFE rules) against the
  // context's own bundle. The context outlives its SSL objects via PeerState::ctx.
  SSL_CTX_set_cert_verify_callback(raw, &TlsContext::verifyPeer, nullptr);
  if (SSL_CTX_set_alpn_protos(raw, kAlpnH2, sizeof(kAlpnH2)) != 0) {
    return opensslError("cannot set ALPN");
  }
  SSL_CTX_set_alpn_select_cb(raw, selectAlpn, nullptr);
  return std::shared_ptr<const TlsContext>(std::move(ctx));
}

absl::StatusOr<UniqueSsl> TlsContext::newSsl(TlsRole role,
                                             std::optional<SpiffeId> expected_peer) const {
  UniqueSsl ssl(SSL_new(ctx_.get()));
  if (!ssl) {
    return opensslError("cannot create TLS connection");
  }
  auto* state = new PeerState{shared_from_this(), std::move(expected_peer)};
  if (SSL_set_ex_data(ssl.get(), peerStateIndex(), state) != 1) {
    delete state;
    return opensslError("cannot attach peer state");
  }
  if (role == TlsRole::kClient) {
    SSL_set_connect_state(ssl.get());
  } else {
    SSL_set_accept_state(ssl.get());
  }
  return ssl;
}

int TlsContext::verifyPeer(X509_STORE_CTX* store_ctx, void* /*arg*/) {
  auto* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* state =
      ssl != nullptr ? static_cast<PeerState*>(SSL_get_ex_data(ssl, peerStateIndex())) : nullptr;
  if (state == nullptr) {
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  const TlsContext& self = *state->ctx;
  int x509_error = X509_V_OK;
  state->result = verifySvid(*self.bundle_, X509_STORE_CTX_get0_cert(store_ctx),
                             X509_STORE_CTX_get0_untrusted(store_ctx), self.options_.trust_domain,
                             self.options_.clock(), &x509_error);
  if (state->result.ok() && state->expected_peer && *state->result != *state->expected_peer) {
    state->result = absl::PermissionDeniedError(absl::StrCat("peer certificate refused: peer is ",
                                                             state->result->uri(), ", expected ",
                                                             state->expected_peer->uri()));
    x509_error = X509_V_ERR_APPLICATION_VERIFICATION;
  }
  if (!state->result.ok()) {
    X509_STORE_CTX_set_error(store_ctx, x509_error);
    return 0;
  }
  return 1;
}

absl::StatusOr<SpiffeId> peerIdentity(const SSL* ssl) {
  auto* state = static_cast<PeerState*>(SSL_get_ex_data(ssl, peerStateIndex()));
  if (state == nullptr) {
    return absl::FailedPreconditionError("connection was not made by a Ferry TlsContext");
  }
  return state->result;
}

absl::StatusOr<std::unique_ptr<TlsCredentials>> TlsCredentials::create(
    TlsIdentity identity, std::shared_ptr<const TrustBundle> bundle, TlsContextOptions options) {
  absl::StatusOr<std::shared_ptr<const TlsContext>> ctx =
      TlsContext::create(identity, bundle, options);
  if (!ctx.ok()) {
    return ctx.status();
  }
  std::unique_ptr<TlsCredentials> creds(new TlsCredentials());
  creds->identity_ = std::move(identity);
  creds->bundle_ = std::move(bundle);
  creds->options_ = std::move(options);
  creds->current_.store(std::move(*ctx));
  return creds;
}

absl::Status TlsCredentials::updateIdentity(TlsIdentity identity) {
  if (identity.id != identity_.id) {
    return absl::InvalidArgumentError(absl::StrCat("rotation cannot change identity from ",
                                                   identity_.id.uri(), " to ", identity.id.uri()));
  }
  absl::StatusOr<std::shared_ptr<const TlsContext>> ctx =
      TlsContext::create(identity, bundle_, options_);
  if (!ctx.ok()) {
    return ctx.status();
  }
  identity_ = std::move(identity);
  current_.store(std::move(*ctx));
  return absl::OkStatus();
}

absl::Status TlsCredentials::updateTrustBundle(std::shared_ptr<const TrustBundle> bundle) {
  absl::StatusOr<std::shared_ptr<const TlsContext>> ctx =
      TlsContext::create(identity_, bundle, options_);
  if (!ctx.ok()) {
    return ctx.status();
  }
  bundle_ = std::move(bundle);
  current_.store(std::move(*ctx));
  return absl::OkStatus();
}

}  // namespace ferry::tls
