// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Peer SVID verification: chain to one of the trust bundle's roots, then the SPIFFE rules.

#include <memory>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tls/ossl.h"
#include "tls/spiffe.h"

namespace ferry::tls {

// One or more trusted roots (several during a CA rotation). Immutable once built, so one
// bundle is shared by every connection and verified against from any thread; rotation swaps
// in a new bundle (see TlsCredentials).
class TrustBundle {
 public:
  static absl::StatusOr<std::shared_ptr<const TrustBundle>> fromPem(absl::string_view pem);
  static absl::StatusOr<std::shared_ptr<const TrustBundle>> fromCerts(
      std::vector<UniqueX509> roots);

  X509_STORE* store() const { return store_.get(); }
  const std::vector<UniqueX509>& roots() const { return roots_; }

 private:
  TrustBundle() = default;
  std::vector<UniqueX509> roots_;
  UniqueX509Store store_;
};

// Verifies a peer's leaf (plus the intermediates it sent, may be null) at time `now`:
//  - exactly one URI SAN, a workload SPIFFE ID (spiffe://<td>/ns/<ns>/sa/<sa>);
//  - its trust domain is `trust_domain`;
//  - the leaf is not a CA;
//  - the chain reaches a root of `bundle` and every certificate is valid at `now`.
// Errors are PermissionDenied and name the reason: "expired", "not signed by a trusted root",
// "trust domain", ... (the agent logs them and counts them by reason). When `x509_error` is
// given it receives the closest X509_V_ERR_* code, which picks the TLS alert the peer sees.
absl::StatusOr<SpiffeId> verifySvid(const TrustBundle& bundle, X509* leaf,
                                    STACK_OF(X509) * intermediates, absl::string_view trust_domain,
                                    absl::Time now, int* x509_error = nullptr);

}  // namespace ferry::tls
