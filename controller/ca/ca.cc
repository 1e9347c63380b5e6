// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/ca/ca.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "tls/x509.h"

namespace ferry::ca {
namespace {

constexpr char kRootCertFile[] = "root-cert.pem";
constexpr char kRootKeyFile[] = "root-key.pem";
constexpr char kRetiringFile[] = "retiring-roots.json";

absl::Status makePrivateDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("CA state dir ", dir, ": ", ec.message()));
  }
  if (::chmod(dir.c_str(), 0700) != 0) {
    return absl::InternalError(absl::StrCat("chmod 0700 ", dir, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CaConfig::validate() const {
  if (absl::Status s = tls::validateTrustDomain(trust_domain); !s.ok()) {
    return s;
  }
  if (workload_cert_lifetime < absl::Minutes(5)) {
    return absl::InvalidArgumentError("CA: workload certificate lifetime must be at least 5m");
  }
  if (root_lifetime <= workload_cert_lifetime) {
    return absl::InvalidArgumentError(
        "CA: root lifetime must be longer than the workload certificate lifetime");
  }
  if (rotation_overlap < workload_cert_lifetime) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CA: rotation overlap (", absl::FormatDuration(rotation_overlap),
        ") must be at least the workload certificate lifetime (",
        absl::FormatDuration(workload_cert_lifetime),
        ") or certificates signed by the old root would stop verifying before they expire"));
  }
  return absl::OkStatus();
}

tls::SpiffeId nodeIdentity(const std::string& trust_domain, const std::string& node) {
  return tls::SpiffeId{trust_domain, kNodeIdentityNamespace, node};
}

absl::StatusOr<std::string> nodeFromIdentity(const tls::SpiffeId& id) {
  if (id.ns != kNodeIdentityNamespace) {
    return absl::PermissionDeniedError(absl::StrCat(
        "'", id.uri(), "' is not a node identity (want namespace ", kNodeIdentityNamespace, ")"));
  }
  return id.service_account;
}

absl::StatusOr<CertificateAuthority::Root> CertificateAuthority::rootFromPem(
    const std::string& cert_pem, const std::string& key_pem, absl::Time now) {
  auto cert = tls::certFromPem(cert_pem);
  if (!cert.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("CA root certificate: ", cert.status().message()));
  }
  auto key = tls::keyFromPem(key_pem);
  if (!key.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("CA root key: ", key.status().message()));
  }
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    tls::drainOpensslErrors();
    return absl::InvalidArgumentError("CA root key does not match the root certificate");
  }
  auto info = tls::inspectCert(cert->get());
  if (!info.ok()) {
    return info.status();
  }
  if (!info->is_ca) {
    return absl::InvalidArgumentError(
        absl::StrCat("CA root certificate '", info->subject, "' is not a CA (basicConstraints)"));
  }
  if (info->not_after <= now) {
    return absl::InvalidArgumentError(absl::StrCat("CA root certificate '", info->subject,
                                                   "' expired at ",
                                                   absl::FormatTime(info->not_after)));
  }
  auto pem = tls::certToPem(cert->get());
  if (!pem.ok()) {
    return pem.status();
  }
  return Root{std::move(*cert), std::move(*key), *pem, absl::InfiniteFuture()};
}

absl::StatusOr<CertificateAuthority::Root> CertificateAuthority::generateRoot(
    const CaConfig& config, absl::Time now) {
  auto key = tls::generateP256Key();
  if (!key.ok()) {
    return key.status();
  }
  // Each generated root gets a distinct name so logs and bundles tell them apart.
  std::string name = absl::StrCat(config.root_common_name, " ", absl::ToUnixSeconds(now));
  auto cert = tls::createRootCert(key->get(), name, config.root_lifetime, now);
  if (!cert.ok()) {
    return cert.status();
  }
  auto pem = tls::certToPem(cert->get());
  if (!pem.ok()) {
    return pem.status();
  }
  return Root{std::move(*cert), std::move(*key), *pem, absl::InfiniteFuture()};
}

absl::StatusOr<CertificateAuthority::RootPem> CertificateAuthority::generateRootPem(
    const CaConfig& config, absl::Time now) {
  auto root = generateRoot(config, now);
  if (!root.ok()) {
    return root.status();
  }
  auto key_pem = tls::keyToPem(root->key.get());
  if (!key_pem.ok()) {
    return key_pem.status();
  }
  return RootPem{root->cert_pem, *key_pem};
}

absl::StatusOr<std::unique_ptr<CertificateAuthority>> CertificateAuthority::fromPem(
    const std::string& cert_pem, const std::string& key_pem, const CaConfig& config,
    absl::Time now) {
  if (absl::Status s = config.validate(); !s.ok()) {
    return s;
  }
  auto root = rootFromPem(cert_pem, key_pem, now);
  if (!root.ok()) {
    return root.status();
  }
  std::unique_ptr<CertificateAuthority> ca(new CertificateAuthority(config));
  ca->active_ = std::move(*root);
  return ca;
}

absl::StatusOr<std::unique_ptr<CertificateAuthority>> CertificateAuthority::loadOrCreate(
    const std::string& state_dir, const CaConfig& config, absl::Time now) {
  if (absl::Status s = config.validate(); !s.ok()) {
    return s;
  }
  if (absl::Status s = makePrivateDir(state_dir); !s.ok()) {
    return s;
  }
  std::unique_ptr<CertificateAuthority> ca(new CertificateAuthority(config));
  ca->state_dir_ = state_dir;
  const std::string cert_path = state_dir + "/" + kRootCertFile;
  const std::string key_path = state_dir + "/" + kRootKeyFile;
  std::lock_guard lock(ca->mu_);
  if (!std::filesystem::exists(key_path)) {
    auto root = generateRoot(config, now);
    if (!root.ok()) {
      return root.status();
    }
    ca->active_ = std::move(*root);
    if (absl::Status s = ca->persistLocked(); !s.ok()) {
      return s;
    }
    return ca;
  }
  auto cert_pem = tls::readPemFile(cert_path);
  auto key_pem = tls::readPemFile(key_path);
  if (!cert_pem.ok() || !key_pem.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "CA state dir ", state_dir, " holds ", kRootKeyFile, " but reading the root failed: ",
        (cert_pem.ok() ? key_pem.status() : cert_pem.status()).message()));
  }
  auto root = rootFromPem(*cert_pem, *key_pem, now);
  if (!root.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("CA state dir ", state_dir, ": ", root.status().message()));
  }
  ca->active_ = std::move(*root);
  const std::string retiring_path = state_dir + "/" + kRetiringFile;
  if (std::filesystem::exists(retiring_path)) {
    auto text = tls::readPemFile(retiring_path);
    nlohmann::json j = text.ok() ? nlohmann::json::parse(*text, nullptr, false)
                                 : nlohmann::json(nlohmann::json::value_t::discarded);
    if (!j.is_array()) {
      return absl::FailedPreconditionError(
          absl::StrCat("CA state: ", retiring_path, " is not a JSON array"));
    }
    for (const auto& entry : j) {
      auto cert = tls::certFromPem(entry.value("cert_pem", ""));
      if (!cert.ok() || !entry.contains("trusted_until_unix")) {
        return absl::FailedPreconditionError(
            absl::StrCat("CA state: bad entry in ", retiring_path));
      }
      absl::Time until = absl::FromUnixSeconds(entry["trusted_until_unix"].get<int64_t>());
      if (until > now) {
        ca->retiring_.push_back(
            Root{std::move(*cert), nullptr, entry["cert_pem"].get<std::string>(), until});
      }
    }
  }
  return ca;
}

absl::Status CertificateAuthority::persistLocked() const {
  if (state_dir_.empty()) {
    return absl::OkStatus();
  }
  auto key_pem = tls::keyToPem(active_.key.get());
  if (!key_pem.ok()) {
    return key_pem.status();
  }
  nlohmann::json retiring = nlohmann::json::array();
  for (const Root& r : retiring_) {
    retiring.push_back(
        {{"cert_pem", r.cert_pem}, {"trusted_until_unix", absl::ToUnixSeconds(r.trusted_until)}});
  }
  // Key first: a crash between the writes leaves a key without its new cert, which load
  // rejects loudly (key/cert mismatch) instead of silently signing with a stale pair.
  for (auto [file, data] : {std::pair<const char*, std::string>{kRootKeyFile, *key_pem},
                            {kRootCertFile, active_.cert_pem},
                            {kRetiringFile, retiring.dump()}}) {
    if (absl::Status s = tls::writePemFile(state_dir_ + "/" + file, data); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CertificateAuthority::sign(const std::string& csr_pem,
                                                       const tls::SpiffeId& id, absl::Time now,
                                                       std::optional<absl::Duration> lifetime) {
  if (id.trust_domain != config_.trust_domain) {
    return absl::PermissionDeniedError(
        absl::StrCat("CA signs only for trust domain ", config_.trust_domain, ", not ", id.uri()));
  }
  auto csr = tls::csrFromPem(csr_pem);
  if (!csr.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("CSR: ", csr.status().message()));
  }
  std::lock_guard lock(mu_);
  auto leaf = tls::signCsr(active_.cert.get(), active_.key.get(), csr->get(), id,
                           lifetime.value_or(config_.workload_cert_lifetime), now);
  if (!leaf.ok()) {
    return leaf.status();
  }
  return tls::certToPem(leaf->get());
}

std::string CertificateAuthority::trustBundlePem(absl::Time now) const {
  std::lock_guard lock(mu_);
  std::string bundle = active_.cert_pem;
  for (const Root& r : retiring_) {
    if (r.trusted_until > now) {
      bundle += r.cert_pem;
    }
  }
  return bundle;
}

std::string CertificateAuthority::activeRootPem() const {
  std::lock_guard lock(mu_);
  return active_.cert_pem;
}

absl::Status CertificateAuthority::installLocked(Root next, absl::Time now) {
  std::erase_if(retiring_, [now](const Root& r) { return r.trusted_until <= now; });
  Root old = std::move(active_);
  old.key.reset();
  old.trusted_until = now + config_.rotation_overlap;
  retiring_.insert(retiring_.begin(), std::move(old));
  active_ = std::move(next);
  return persistLocked();
}

absl::Status CertificateAuthority::rotate(absl::Time now) {
  auto next = generateRoot(config_, now);
  if (!next.ok()) {
    return next.status();
  }
  std::lock_guard lock(mu_);
  return installLocked(std::move(*next), now);
}

absl::Status CertificateAuthority::rotateTo(const std::string& cert_pem, const std::string& key_pem,
                                            absl::Time now) {
  auto next = rootFromPem(cert_pem, key_pem, now);
  if (!next.ok()) {
    return next.status();
  }
  std::lock_guard lock(mu_);
  if (next->cert_pem == active_.cert_pem) {
    return absl::OkStatus();  // same root supplied again (e.g. Secret re-read): not a rotation
  }
  return installLocked(std::move(*next), now);
}

}  // namespace ferry::ca
