// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The mesh CA kept in Kubernetes: the root certificate and key in a kubernetes.io/tls Secret
// (shared by every controller replica and surviving restarts), and the trust bundle published
// in a ConfigMap that agents mount to authenticate the controller before their first snapshot.

#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controller/ca/ca.h"
#include "kube/client.h"

namespace ferry::controller {

inline constexpr char kTrustBundleKey[] = "root-cert.pem";

// Reads the root from Secret `ns/name` (tls.crt, tls.key). When it does not exist and
// `generate` is set, makes a root and creates the Secret; if another replica created it first
// (409), that one's root is used, so all replicas sign with the same root.
absl::StatusOr<std::unique_ptr<ca::CertificateAuthority>> caFromSecret(
    const kube::Client& client, const std::string& ns, const std::string& name, bool generate,
    const ca::CaConfig& config, absl::Time now);

// tls.crt and tls.key of a kubernetes.io/tls Secret object, decoded.
absl::StatusOr<ca::CertificateAuthority::RootPem> rootPemFromSecret(const nlohmann::json& secret,
                                                                    const std::string& ns,
                                                                    const std::string& name);

// Creates or updates ConfigMap `ns/name` so that data[root-cert.pem] is `bundle_pem`. No write
// when it already holds that bundle.
absl::Status publishTrustBundle(const kube::Client& client, const std::string& ns,
                                const std::string& name, const std::string& bundle_pem);

}  // namespace ferry::controller
