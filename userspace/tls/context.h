// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// TLS contexts for workload mTLS: TLS 1.3 only, both sides present a certificate, ALPN "h2",
// AES-128-GCM preferred, peers verified as SVIDs (verify.h) of the mesh's trust domain.
//
// A TlsContext is immutable and shared by every connection made from it. Rotation (a new
// certificate or a new trust bundle) builds a new context and publishes it through
// TlsCredentials with one atomic pointer swap: connections in flight keep the context they
// started with, new ones get the new one, and the data path never waits on a lock.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tls/ossl.h"
#include "tls/spiffe.h"
#include "tls/verify.h"

namespace ferry::tls {

// A workload's key and certificate chain (leaf first; intermediates may follow).
struct TlsIdentity {
  SpiffeId id;
  UniquePkey key;
  std::vector<UniqueX509> chain;

  // Parses PEM, checks the key matches the leaf, and reads the SPIFFE ID from the leaf.
  static absl::StatusOr<TlsIdentity> fromPem(absl::string_view chain_pem,
                                             absl::string_view key_pem);
  static absl::StatusOr<TlsIdentity> fromParts(UniquePkey key, std::vector<UniqueX509> chain);
  // Another owner of the same key and certificates (reference counted, no copy).
  TlsIdentity share() const;
};

enum class TlsRole { kClient, kServer };

struct TlsContextOptions {
  // Peers must present SVIDs of this trust domain.
  std::string trust_domain = "cluster.local";
  // Time used to check certificate validity; tests pass a fake clock.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

class TlsContext : public std::enable_shared_from_this<TlsContext> {
 public:
  static absl::StatusOr<std::shared_ptr<const TlsContext>> create(
      const TlsIdentity& identity, std::shared_ptr<const TrustBundle> bundle,
      TlsContextOptions options = {});

  // A connection object in client or server state. A client may pin the identity it expects
  // the server to have (the destination workload's); anything else fails the handshake.
  absl::StatusOr<UniqueSsl> newSsl(TlsRole role,
                                   std::optional<SpiffeId> expected_peer = std::nullopt) const;

  const SpiffeId& identity() const { return identity_; }
  const std::shared_ptr<const TrustBundle>& bundle() const { return bundle_; }
  // notAfter of this context's leaf: rotation schedules from it.
  absl::Time notAfter() const { return not_after_; }
  SSL_CTX* raw() const { return ctx_.get(); }

 private:
  TlsContext() = default;
  static int verifyPeer(X509_STORE_CTX* store_ctx, void* arg);

  SpiffeId identity_;
  absl::Time not_after_;
  std::shared_ptr<const TrustBundle> bundle_;
  TlsContextOptions options_;
  UniqueSslCtx ctx_;
};

// The verified peer identity of a connection made by TlsContext::newSsl, or why the peer was
// refused (PermissionDenied naming the reason), or Unavailable before the peer was verified.
absl::StatusOr<SpiffeId> peerIdentity(const SSL* ssl);

// The current context for one local identity, swapped atomically on rotation.
class TlsCredentials {
 public:
  static absl::StatusOr<std::unique_ptr<TlsCredentials>> create(
      TlsIdentity identity, std::shared_ptr<const TrustBundle> bundle,
      TlsContextOptions options = {});

  // Lock-free; what a new connection should use.
  std::shared_ptr<const TlsContext> current() const { return current_.load(); }

  // Rotation. Each builds a complete new context before publishing it; on error the old one
  // stays in use. Not meant to be called concurrently with each other (one rotation owner).
  absl::Status updateIdentity(TlsIdentity identity);
  absl::Status updateTrustBundle(std::shared_ptr<const TrustBundle> bundle);

 private:
  TlsCredentials() = default;
  TlsIdentity identity_;
  std::shared_ptr<const TrustBundle> bundle_;
  TlsContextOptions options_;
  std::atomic<std::shared_ptr<const TlsContext>> current_;
};

}  // namespace ferry::tls
