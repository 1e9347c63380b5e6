// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/identity/workload_certs.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "log/log.h"
#include "tls/spiffe.h"
#include "tls/x509.h"

namespace ferry::agent {
namespace {

constexpr absl::Duration kSignTimeout = absl::Seconds(10);

std::string firstCert(const std::string& pem) {
  constexpr char kEnd[] = "-----END CERTIFICATE-----";
  auto end = pem.find(kEnd);
  return end == std::string::npos ? pem : pem.substr(0, end + sizeof(kEnd) - 1);
}

}  // namespace

ControllerCertificateStore::ControllerCertificateStore(std::shared_ptr<ControllerLink> link,
                                                       const controlplane::Clock& clock,
                                                       controlplane::RenewalPolicy policy)
    : link_(std::move(link)), clock_(clock), policy_(policy) {}

ControllerCertificateStore::~ControllerCertificateStore() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void ControllerCertificateStore::startRefreshing(absl::Duration period,
                                                 std::function<void()> after_install) {
  thread_ = std::thread([this, period, after_install = std::move(after_install)] {
    std::unique_lock lock(stop_mu_);
    while (!stopping_) {
      lock.unlock();
      if (refresh() && after_install) {
        after_install();
      }
      lock.lock();
      stop_cv_.wait_for(lock, absl::ToChronoMilliseconds(period), [this] { return stopping_; });
    }
  });
}

WorkloadCertStats ControllerCertificateStore::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

absl::StatusOr<controlplane::IssuedCert> ControllerCertificateStore::issue(Identity& id) {
  // Any local mesh pod of this identity vouches for it; the controller checks that it runs on
  // this node and that its service account is the one asked for.
  auto snap = link_->snapshot();
  const model::Workload* pod = nullptr;
  if (snap.has_value()) {
    for (const model::Workload& w : snap->workloads) {
      if (w.node == link_->node() && w.mesh_enabled && w.key.ns == id.ns &&
          w.service_account == id.service_account) {
        pod = &w;
        break;
      }
    }
  }
  if (pod == nullptr) {
    return absl::NotFoundError(absl::StrCat("no mesh pod of ", id.ns, "/", id.service_account,
                                            " on node ", link_->node(),
                                            " in the controller's view"));
  }
  auto key = tls::generateP256Key();
  if (!key.ok()) {
    return key.status();
  }
  auto csr =
      tls::createCsr(key->get(), tls::SpiffeId{link_->trustDomain(), id.ns, id.service_account});
  if (!csr.ok()) {
    return csr.status();
  }
  auto csr_pem = tls::csrToPem(csr->get());
  auto key_pem = tls::keyToPem(key->get());
  if (!csr_pem.ok() || !key_pem.ok()) {
    return absl::InternalError("cannot encode a workload key or CSR");
  }
  auto chain = link_->signWorkload(pod->key, *csr_pem, kSignTimeout);
  if (!chain.ok()) {
    return chain.status();
  }
  auto leaf = tls::certFromPem(*chain);
  if (!leaf.ok()) {
    return leaf.status();
  }
  auto info = tls::inspectCert(leaf->get());
  if (!info.ok()) {
    return info.status();
  }
  id.pending_key_pem = *key_pem;
  return controlplane::IssuedCert{*chain, info->not_before, info->not_after};
}

std::unique_ptr<controlplane::CertRenewer> ControllerCertificateStore::makeRenewer(Identity& id) {
  // `id` lives in identities_ (a std::map: stable address) as long as the renewer.
  return std::make_unique<controlplane::CertRenewer>(
      clock_, [this, &id] { return issue(id); }, policy_);
}

ControllerCertificateStore::Identity& ControllerCertificateStore::identityLocked(
    const std::string& ns, const std::string& service_account) {
  auto [it, added] = identities_.try_emplace(absl::StrCat(ns, ".", service_account));
  if (added) {
    it->second.ns = ns;
    it->second.service_account = service_account;
    it->second.renewer = makeRenewer(it->second);
  }
  return it->second;
}

void ControllerCertificateStore::applyBundleLocked(const std::string& pem) {
  if (pem.empty() || pem == bundle_pem_) {
    return;
  }
  auto bundle = tls::TrustBundle::fromPem(pem);
  if (!bundle.ok()) {
    LOG_WARN("certificates: keeping the previous trust bundle: ", bundle.status().ToString());
    return;
  }
  const std::string root = firstCert(pem);
  const bool root_changed = !active_root_pem_.empty() && root != active_root_pem_;
  bundle_pem_ = pem;
  bundle_ = *bundle;
  active_root_pem_ = root;
  ++stats_.bundle_updates;
  LOG_INFO("certificates: trust bundle updated",
           root_changed ? "; signing root changed, re-issuing every identity" : "");
  for (auto& [key, id] : identities_) {
    if (root_changed) {
      // The current certificate keeps serving (the bundle still trusts its root) until the
      // fresh renewer obtains one from the new root.
      id.renewer = makeRenewer(id);
    } else if (!id.installed_cert_pem.empty()) {
      if (auto s = installLocked(id); !s.ok()) {
        LOG_WARN("certificates: ", key, ": ", s.ToString());
      }
    }
  }
  if (root_changed) {
    ++stats_.root_changes;
  }
}

absl::Status ControllerCertificateStore::installLocked(Identity& id) {
  if (!bundle_) {
    return absl::UnavailableError("no trust bundle from the controller yet");
  }
  auto identity = tls::TlsIdentity::fromPem(id.installed_cert_pem, id.installed_key_pem);
  if (!identity.ok()) {
    return identity.status();
  }
  tls::TlsContextOptions options;
  options.trust_domain = link_->trustDomain();
  auto ctx = tls::TlsContext::create(*identity, bundle_, options);
  if (!ctx.ok()) {
    return ctx.status();
  }
  auto next = std::make_shared<Map>(*contexts_.load());
  (*next)[absl::StrCat(id.ns, ".", id.service_account)] = *ctx;
  contexts_.store(std::move(next));
  return absl::OkStatus();
}

absl::Status ControllerCertificateStore::renewLocked(Identity& id) {
  if (id.renewer->tick()) {
    const auto& current = id.renewer->current();
    if (current.has_value() && current->cert_pem != id.installed_cert_pem) {
      std::string previous_cert = std::move(id.installed_cert_pem);
      std::string previous_key = std::move(id.installed_key_pem);
      id.installed_cert_pem = current->cert_pem;
      id.installed_key_pem = id.pending_key_pem;
      if (auto s = installLocked(id); !s.ok()) {
        id.installed_cert_pem = std::move(previous_cert);
        id.installed_key_pem = std::move(previous_key);
        return s;
      }
      ++stats_.issued;
      LOG_INFO("certificates: issued spiffe://", link_->trustDomain(), "/ns/", id.ns, "/sa/",
               id.service_account, ", valid until ", absl::FormatTime(current->not_after));
    } else if (!id.renewer->lastError().ok()) {
      ++stats_.issue_failures;
      LOG_WARN("certificates: ", id.ns, "/", id.service_account, ": ",
               id.renewer->lastError().ToString(),
               id.installed_cert_pem.empty() ? "" : "; the current certificate keeps serving");
    }
  }
  if (id.installed_cert_pem.empty()) {
    return id.renewer->lastError().ok() ? absl::UnavailableError("no certificate yet")
                                        : id.renewer->lastError();
  }
  return absl::OkStatus();
}

bool ControllerCertificateStore::refresh() {
  auto snap = link_->snapshot();
  if (!snap.has_value()) {
    return false;
  }
  std::lock_guard lock(mu_);
  applyBundleLocked(snap->trust_bundle_pem);
  std::set<std::string> local;
  for (const model::Workload& w : snap->workloads) {
    if (w.node == link_->node() && w.mesh_enabled) {
      identityLocked(w.key.ns, w.service_account);
      local.insert(absl::StrCat(w.key.ns, ".", w.service_account));
    }
  }
  // An identity whose last local pod left is forgotten: no renewals for it, and no new
  // connection gets it (connections in flight keep their context).
  auto contexts = std::make_shared<Map>(*contexts_.load());
  for (auto it = identities_.begin(); it != identities_.end();) {
    if (local.count(it->first) > 0) {
      ++it;
      continue;
    }
    LOG_INFO("certificates: no local pod of ", it->second.ns, "/", it->second.service_account,
             " any more; dropping its certificate");
    contexts->erase(it->first);
    it = identities_.erase(it);
  }
  contexts_.store(std::move(contexts));
  for (auto& [key, id] : identities_) {
    (void)renewLocked(id);  // failures are logged and retried with backoff
  }
  const uint64_t installs = stats_.issued + stats_.bundle_updates;
  const bool installed = installs != installs_reported_;
  installs_reported_ = installs;
  return installed;
}

absl::StatusOr<std::shared_ptr<const tls::TlsContext>> ControllerCertificateStore::contextFor(
    const std::string& ns, const std::string& service_account) {
  const std::string key = absl::StrCat(ns, ".", service_account);
  {
    auto map = contexts_.load();
    if (auto it = map->find(key); it != map->end()) {
      return it->second;
    }
  }
  // First use before the background pass got to it: issue now.
  std::lock_guard lock(mu_);
  if (auto snap = link_->snapshot(); snap.has_value()) {
    applyBundleLocked(snap->trust_bundle_pem);
  }
  Identity& id = identityLocked(ns, service_account);
  if (auto s = renewLocked(id); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("certificate for ", ns, "/", service_account,
                                               " from the controller: ", s.message()));
  }
  auto map = contexts_.load();
  auto it = map->find(key);
  if (it == map->end()) {
    return absl::InternalError("certificate installed but not published");
  }
  return it->second;
}

}  // namespace ferry::agent
