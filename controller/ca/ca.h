// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The mesh certificate authority: one active root that signs, plus retiring roots that stay in
// the trust bundle for an overlap window after a rotation, so certificates the old root signed
// keep verifying until they expire. Thread-safe: gRPC handlers sign concurrently.
//
// Policy (who may get which identity) is not decided here: see csr_authorizer.h.

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tls/ossl.h"
#include "tls/spiffe.h"

namespace ferry::ca {

struct CaConfig {
  std::string trust_domain = "cluster.local";
  absl::Duration workload_cert_lifetime = absl::Hours(24);
  absl::Duration root_lifetime = absl::Hours(24 * 365 * 10);
  // How long a replaced root stays trusted. At least one workload certificate lifetime, so
  // every certificate the old root signed has expired before the old root leaves the bundle.
  absl::Duration rotation_overlap = absl::Hours(48);
  std::string root_common_name = "Ferry mesh root CA";
  absl::Status validate() const;
};

class CertificateAuthority {
 public:
  // Root supplied by the operator: PEM files, or a Kubernetes Secret's tls.crt/tls.key (the
  // controller reads the Secret and passes its data). Nothing is written to disk.
  static absl::StatusOr<std::unique_ptr<CertificateAuthority>> fromPem(const std::string& cert_pem,
                                                                       const std::string& key_pem,
                                                                       const CaConfig& config,
                                                                       absl::Time now);

  // Loads the root kept in `state_dir`, or generates one on first start and keeps it there
  // (directory 0700, files 0600). Rotations are kept there too.
  static absl::StatusOr<std::unique_ptr<CertificateAuthority>> loadOrCreate(
      const std::string& state_dir, const CaConfig& config, absl::Time now);

  // Signs `csr_pem` for exactly `id` (the CSR may ask for `id` or nothing else). `lifetime`
  // defaults to the configured workload lifetime. Returns the leaf PEM.
  absl::StatusOr<std::string> sign(const std::string& csr_pem, const tls::SpiffeId& id,
                                   absl::Time now,
                                   std::optional<absl::Duration> lifetime = std::nullopt);

  // Every root trusted at `now`: the active one first, then retiring ones inside their window.
  std::string trustBundlePem(absl::Time now) const;

  // A new generated root becomes the signer; the current one is trusted until
  // now + rotation_overlap.
  absl::Status rotate(absl::Time now);
  // Same, with a root supplied by the operator.
  absl::Status rotateTo(const std::string& cert_pem, const std::string& key_pem, absl::Time now);

  std::string activeRootPem() const;

  // A new root as PEM, for a caller that keeps it elsewhere (a Kubernetes Secret) and then
  // loads it with fromPem.
  struct RootPem {
    std::string cert_pem;
    std::string key_pem;
  };
  static absl::StatusOr<RootPem> generateRootPem(const CaConfig& config, absl::Time now);
  const CaConfig& config() const { return config_; }

 private:
  struct Root {
    tls::UniqueX509 cert;
    tls::UniquePkey key;  // null for retiring roots: they never sign again
    std::string cert_pem;
    absl::Time trusted_until = absl::InfiniteFuture();
  };

  explicit CertificateAuthority(CaConfig config) : config_(std::move(config)) {}
  static absl::StatusOr<Root> rootFromPem(const std::string& cert_pem, const std::string& key_pem,
                                          absl::Time now);
  static absl::StatusOr<Root> generateRoot(const CaConfig& config, absl::Time now);
  absl::Status installLocked(Root next, absl::Time now);
  absl::Status persistLocked() const;

  const CaConfig config_;
  std::string state_dir_;  // empty: not persisted
  mutable std::mutex mu_;
  Root active_;
  std::vector<Root> retiring_;
};

// Identity the CA gives an agent for its node. Namespace "ferry.node" holds a dot, which no
// Kubernetes namespace can, so no pod can ever be given (or ask for) a node identity.
inline constexpr char kNodeIdentityNamespace[] = "ferry.node";
tls::SpiffeId nodeIdentity(const std::string& trust_domain, const std::string& node);
// The node name in a node identity, or an error when `id` is not one.
absl::StatusOr<std::string> nodeFromIdentity(const tls::SpiffeId& id);

}  // namespace ferry::ca
