// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A certificate authority for tests: a fresh root per instance and leaf SVIDs on demand,
// including the broken ones negative tests need (expired, several SANs, CA leaves). It aborts
// with a message on any OpenSSL failure: a fake that cannot issue makes every test meaningless.

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tls/spiffe.h"
#include "tls/verify.h"
#include "tls/x509.h"

namespace ferry::fakes {

struct IssuedCert {
  tls::SpiffeId id;
  tls::UniquePkey key;
  std::vector<tls::UniqueX509> chain;  // leaf first (the root is not included)
  std::string cert_pem;
  std::string key_pem;
};

class FakeCa {
 public:
  // A root for `trust_domain`, valid [now - 1 min, now + lifetime].
  explicit FakeCa(std::string trust_domain = "cluster.local", absl::Time now = absl::Now(),
                  absl::Duration lifetime = absl::Hours(24 * 365));

  const std::string& trustDomain() const { return trust_domain_; }
  X509* root() const { return root_.get(); }
  EVP_PKEY* rootKey() const { return root_key_.get(); }
  std::string rootPem() const;
  std::shared_ptr<const tls::TrustBundle> bundle() const;

  // A leaf for spiffe://<trust domain>/ns/<ns>/sa/<sa> through the real CSR + signCsr path.
  IssuedCert issue(absl::string_view ns, absl::string_view sa,
                   absl::Duration lifetime = absl::Hours(24), absl::Time now = absl::Now()) const;
  // Same for any (already valid) identity, including one in a different trust domain.
  IssuedCert issue(const tls::SpiffeId& id, absl::Duration lifetime = absl::Hours(24),
                   absl::Time now = absl::Now()) const;
  // Bypasses signCsr to make malformed SVIDs: any URI SANs (maybe none), maybe a CA leaf.
  IssuedCert issueRaw(const std::vector<std::string>& uri_sans, bool is_ca,
                      absl::Duration lifetime = absl::Hours(24),
                      absl::Time now = absl::Now()) const;

 private:
  std::string trust_domain_;
  tls::UniquePkey root_key_;
  tls::UniqueX509 root_;
};

}  // namespace ferry::fakes
