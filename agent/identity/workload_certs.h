// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Workload certificates from ferry-controller. For each identity (namespace, service account)
// of a mesh pod on this node the agent makes an ECDSA P-256 key in memory, sends a CSR through
// SignWorkload naming one of that identity's local pods, and renews at half-life with jittered
// backoff (controlplane::CertRenewer). The trust bundle comes with every snapshot; when it
// changes, every context is rebuilt with it (during a rotation it holds the old and the new
// root, so peers with either keep verifying), and when the signing root changed, every
// identity is re-issued from the new root. Connections in flight keep the context they
// started with. Lookups are lock-free, like FileCertificateStore.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/identity/certificates.h"
#include "agent/state/controlplane_state.h"
#include "controlplane/clock.h"
#include "controlplane/renewal.h"
#include "tls/context.h"
#include "tls/verify.h"

namespace ferry::agent {

struct WorkloadCertStats {
  uint64_t issued = 0;
  uint64_t issue_failures = 0;
  uint64_t bundle_updates = 0;
  uint64_t root_changes = 0;
};

class ControllerCertificateStore : public CertificateStore {
 public:
  ControllerCertificateStore(std::shared_ptr<ControllerLink> link, const controlplane::Clock& clock,
                             controlplane::RenewalPolicy policy = {});
  ~ControllerCertificateStore() override;

  // Runs refresh() every `period` on a background thread; after a pass that installed a
  // certificate or a trust bundle, calls `after_install` there (if set).
  void startRefreshing(absl::Duration period, std::function<void()> after_install = nullptr);

  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> contextFor(
      const std::string& ns, const std::string& service_account) override;

  // One pass: applies the snapshot's trust bundle, issues certificates for local mesh pods'
  // identities not seen yet, renews the ones due. True when a certificate or a new trust bundle
  // was installed since the previous pass: by this one, or by contextFor on first use.
  bool refresh();
  WorkloadCertStats stats() const;

 private:
  struct Identity {
    std::string ns, service_account;
    std::unique_ptr<controlplane::CertRenewer> renewer;
    std::string pending_key_pem;  // the key of the certificate the renewer last obtained
    std::string installed_cert_pem, installed_key_pem;
  };
  using Map = std::map<std::string, std::shared_ptr<const tls::TlsContext>>;

  Identity& identityLocked(const std::string& ns, const std::string& service_account);
  std::unique_ptr<controlplane::CertRenewer> makeRenewer(Identity& id);
  absl::StatusOr<controlplane::IssuedCert> issue(Identity& id);
  void applyBundleLocked(const std::string& pem);
  // Ticks the renewer and installs what it obtained. Error when no certificate is usable.
  absl::Status renewLocked(Identity& id);
  absl::Status installLocked(Identity& id);

  std::shared_ptr<ControllerLink> link_;
  const controlplane::Clock& clock_;
  controlplane::RenewalPolicy policy_;

  mutable std::mutex mu_;  // slow path: identities, bundle, issuing
  std::map<std::string, Identity> identities_;
  std::string bundle_pem_;
  std::string active_root_pem_;
  std::shared_ptr<const tls::TrustBundle> bundle_;
  WorkloadCertStats stats_;
  uint64_t installs_reported_ = 0;  // issued + bundle_updates when refresh() last returned
  std::atomic<std::shared_ptr<const Map>> contexts_{std::make_shared<const Map>()};

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ferry::agent
