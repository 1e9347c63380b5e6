// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// X.509 SVID primitives: P-256 keys, CSRs carrying a SPIFFE URI SAN, PEM, certificate
// inspection, and the CA's signing step. The controller's CA and the fake CA in tests are
// built on these; neither touches OpenSSL's X.509 API directly.

#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tls/ossl.h"
#include "tls/spiffe.h"

namespace ferry::tls {

// A fresh ECDSA P-256 key pair. It lives only in this process's memory unless saved on purpose.
absl::StatusOr<UniquePkey> generateP256Key();

// A PKCS#10 request signed by `key` carrying `id` as its only URI SAN and an empty subject
// (SPIFFE SVIDs identify by SAN only).
absl::StatusOr<UniqueX509Req> createCsr(EVP_PKEY* key, const SpiffeId& id);

// A self-signed CA certificate (CA:TRUE, keyCertSign) named "<common_name>", valid from
// `now` - 1 min (tolerates small clock skew) to `now + lifetime`.
absl::StatusOr<UniqueX509> createRootCert(EVP_PKEY* key, absl::string_view common_name,
                                          absl::Duration lifetime, absl::Time now);

// The CA's signing step. Verifies the CSR's self-signature, requires a P-256 public key, and
// refuses a CSR whose URI SANs ask for anything other than `id` (the CA decides identities,
// the requester cannot). The leaf is CA:FALSE, digitalSignature, serverAuth+clientAuth, a
// critical URI SAN `id`, a random 127-bit serial, valid [now - 1 min, now + lifetime]
// (clamped to the issuer's notAfter so a leaf never outlives its CA).
absl::StatusOr<UniqueX509> signCsr(X509* ca_cert, EVP_PKEY* ca_key, X509_REQ* csr,
                                   const SpiffeId& id, absl::Duration lifetime, absl::Time now);

// What Ferry needs to know about a certificate, without trusting it (no verification here).
struct CertInfo {
  std::vector<std::string> uri_sans;
  absl::Time not_before;
  absl::Time not_after;
  std::string serial_hex;  // upper-case hex, no leading zeros
  bool is_ca = false;
  std::string subject;  // one-line RFC 2253 form, for logs

  // The SPIFFE ID in the only URI SAN; fails when there is not exactly one or it is malformed.
  absl::StatusOr<SpiffeId> spiffeId() const;
};
absl::StatusOr<CertInfo> inspectCert(X509* cert);

// PEM. Keys are written as unencrypted PKCS#8; callers decide where (if anywhere) they go.
absl::StatusOr<std::string> certToPem(X509* cert);
absl::StatusOr<std::string> certChainToPem(const std::vector<UniqueX509>& chain);
absl::StatusOr<std::string> keyToPem(EVP_PKEY* key);
absl::StatusOr<std::string> csrToPem(X509_REQ* csr);
absl::StatusOr<UniqueX509> certFromPem(absl::string_view pem);
// Every certificate in `pem`, in order; fails when there is none.
absl::StatusOr<std::vector<UniqueX509>> certChainFromPem(absl::string_view pem);
absl::StatusOr<UniquePkey> keyFromPem(absl::string_view pem);
absl::StatusOr<UniqueX509Req> csrFromPem(absl::string_view pem);

// Files. writePemFile creates the file with mode 0600 (it may hold a private key) atomically
// (temp file + rename) so a reader never sees half a certificate during rotation.
absl::StatusOr<std::string> readPemFile(const std::string& path);
absl::Status writePemFile(const std::string& path, absl::string_view pem);

// A new reference to `cert` (X509_up_ref) as an owner.
UniqueX509 shareCert(X509* cert);

}  // namespace ferry::tls
