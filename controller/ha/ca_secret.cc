// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/ha/ca_secret.h"

#include <nlohmann/json.hpp>
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ferry::controller {
namespace {

using nlohmann::json;

absl::StatusOr<std::string> secretField(const json& secret, const std::string& ns,
                                        const std::string& name, const char* key) {
  const std::string where = absl::StrCat("Secret ", ns, "/", name);
  if (!secret.contains("data") || !secret["data"].is_object() || !secret["data"].contains(key) ||
      !secret["data"][key].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(where, " has no data.", key,
                                                   " (a kubernetes.io/tls Secret needs tls.crt and "
                                                   "tls.key)"));
  }
  std::string decoded;
  if (!absl::Base64Unescape(secret["data"][key].get<std::string>(), &decoded)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": data.", key, " is not base64"));
  }
  return decoded;
}

absl::StatusOr<std::unique_ptr<ca::CertificateAuthority>> fromSecretObject(
    const json& secret, const std::string& ns, const std::string& name, const ca::CaConfig& config,
    absl::Time now) {
  auto root = rootPemFromSecret(secret, ns, name);
  if (!root.ok()) {
    return root.status();
  }
  auto ca = ca::CertificateAuthority::fromPem(root->cert_pem, root->key_pem, config, now);
  if (!ca.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Secret ", ns, "/", name, " does not hold a usable CA root: ", ca.status().message()));
  }
  return ca;
}

}  // namespace

absl::StatusOr<ca::CertificateAuthority::RootPem> rootPemFromSecret(const json& secret,
                                                                    const std::string& ns,
                                                                    const std::string& name) {
  auto cert = secretField(secret, ns, name, "tls.crt");
  if (!cert.ok()) {
    return cert.status();
  }
  auto key = secretField(secret, ns, name, "tls.key");
  if (!key.ok()) {
    return key.status();
  }
  return ca::CertificateAuthority::RootPem{*cert, *key};
}

absl::StatusOr<std::unique_ptr<ca::CertificateAuthority>> caFromSecret(
    const kube::Client& client, const std::string& ns, const std::string& name, bool generate,
    const ca::CaConfig& config, absl::Time now) {
  auto existing = client.get(kube::kSecrets, ns, name);
  if (existing.ok()) {
    return fromSecretObject(*existing, ns, name, config, now);
  }
  if (kube::httpStatusOf(existing.status()) != 404) {
    return absl::UnavailableError(absl::StrCat("cannot read the CA Secret ", ns, "/", name, ": ",
                                               existing.status().message()));
  }
  if (!generate) {
    return absl::NotFoundError(absl::StrCat(
        "the CA Secret ", ns, "/", name,
        " does not exist (ca.source=secret expects it; use ca.source=generated to have one made)"));
  }
  auto root = ca::CertificateAuthority::generateRootPem(config, now);
  if (!root.ok()) {
    return root.status();
  }
  json secret = {
      {"apiVersion", "v1"},
      {"kind", "Secret"},
      {"type", "kubernetes.io/tls"},
      {"metadata",
       {{"name", name}, {"namespace", ns}, {"labels", {{"app.kubernetes.io/part-of", "ferry"}}}}},
      {"data",
       {{"tls.crt", absl::Base64Escape(root->cert_pem)},
        {"tls.key", absl::Base64Escape(root->key_pem)}}}};
  auto created = client.create(kube::kSecrets, secret);
  if (created.ok()) {
    return fromSecretObject(*created, ns, name, config, now);
  }
  if (kube::httpStatusOf(created.status()) == 409) {
    // Another replica generated the root first: use theirs.
    auto theirs = client.get(kube::kSecrets, ns, name);
    if (!theirs.ok()) {
      return theirs.status();
    }
    return fromSecretObject(*theirs, ns, name, config, now);
  }
  return absl::UnavailableError(absl::StrCat("cannot create the CA Secret ", ns, "/", name, ": ",
                                             created.status().message()));
}

absl::Status publishTrustBundle(const kube::Client& client, const std::string& ns,
                                const std::string& name, const std::string& bundle_pem) {
  auto existing = client.get(kube::kConfigMaps, ns, name);
  if (existing.ok()) {
    json map = *existing;
    if (map.contains("data") && map["data"].is_object() &&
        map["data"].value(kTrustBundleKey, "") == bundle_pem) {
      return absl::OkStatus();
    }
    map["data"][kTrustBundleKey] = bundle_pem;
    return client.update(kube::kConfigMaps, map).status();
  }
  if (kube::httpStatusOf(existing.status()) != 404) {
    return existing.status();
  }
  json map = {
      {"apiVersion", "v1"},
      {"kind", "ConfigMap"},
      {"metadata",
       {{"name", name}, {"namespace", ns}, {"labels", {{"app.kubernetes.io/part-of", "ferry"}}}}},
      {"data", {{kTrustBundleKey, bundle_pem}}}};
  return client.create(kube::kConfigMaps, map).status();
}

}  // namespace ferry::controller
