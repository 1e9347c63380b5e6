// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/identity/certificates.h"

#include "absl/strings/str_cat.h"
#include "log/log.h"
#include "tls/x509.h"

namespace ferry::agent {

FileCertificateStore::FileCertificateStore(std::string dir, std::string trust_domain,
                                           tls::TlsContextOptions options)
    : dir_(std::move(dir)), options_(std::move(options)) {
  options_.trust_domain = std::move(trust_domain);
}

absl::StatusOr<std::shared_ptr<const tls::TlsContext>> FileCertificateStore::load(
    const std::string& key) {
  auto chain = tls::readPemFile(absl::StrCat(dir_, "/", key, ".crt"));
  if (!chain.ok()) {
    return chain.status();
  }
  auto key_pem = tls::readPemFile(absl::StrCat(dir_, "/", key, ".key"));
  if (!key_pem.ok()) {
    return key_pem.status();
  }
  auto bundle_pem = tls::readPemFile(absl::StrCat(dir_, "/bundle.pem"));
  if (!bundle_pem.ok()) {
    return bundle_pem.status();
  }
  auto identity = tls::TlsIdentity::fromPem(*chain, *key_pem);
  if (!identity.ok()) {
    return absl::Status(identity.status().code(),
                        absl::StrCat(dir_, "/", key, ".crt: ", identity.status().message()));
  }
  auto bundle = tls::TrustBundle::fromPem(*bundle_pem);
  if (!bundle.ok()) {
    return absl::Status(bundle.status().code(),
                        absl::StrCat(dir_, "/bundle.pem: ", bundle.status().message()));
  }
  return tls::TlsContext::create(*identity, *bundle, options_);
}

absl::StatusOr<std::shared_ptr<const tls::TlsContext>> FileCertificateStore::contextFor(
    const std::string& ns, const std::string& service_account) {
  const std::string key = absl::StrCat(ns, ".", service_account);
  {
    auto map = contexts_.load();
    auto it = map->find(key);
    if (it != map->end()) {
      return it->second;
    }
  }
  std::lock_guard lock(load_mu_);
  auto map = contexts_.load();
  if (auto it = map->find(key); it != map->end()) {
    return it->second;
  }
  auto ctx = load(key);
  if (!ctx.ok()) {
    return ctx.status();
  }
  auto next = std::make_shared<Map>(*map);
  (*next)[key] = *ctx;
  contexts_.store(std::move(next));
  LOG_INFO("certificates: loaded ", ctx.value()->identity().uri());
  return *ctx;
}

absl::Status FileCertificateStore::reload() {
  std::lock_guard lock(load_mu_);
  auto map = contexts_.load();
  auto next = std::make_shared<Map>(*map);
  absl::Status first_error;
  for (auto& [key, ctx] : *next) {
    auto fresh = load(key);
    if (!fresh.ok()) {
      LOG_WARN("certificates: keeping the old ", key, ": ", fresh.status().ToString());
      first_error.Update(fresh.status());
      continue;
    }
    ctx = *fresh;
  }
  contexts_.store(std::move(next));
  return first_error;
}

}  // namespace ferry::agent
