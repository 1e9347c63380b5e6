// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Where the Kubernetes API server is and how to authenticate to it: either the pod's own
// service account (in-cluster) or a kubeconfig file.

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace ferry::kube {

inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

struct KubeConfig {
  std::string server;  // "https://10.96.0.1:443" or, for tests, "http://127.0.0.1:port"
  std::string ca_pem;  // PEM bundle the server certificate must chain to; empty: system store
  bool insecure_skip_tls_verify = false;
  std::string token;       // bearer token
  std::string token_file;  // re-read on every request: projected tokens rotate
  std::string client_cert_pem, client_key_pem;
  std::string ns = "default";  // namespace of the context / of the pod
};

// In-cluster: KUBERNETES_SERVICE_HOST/PORT from `env` plus token, ca.crt and namespace under
// `sa_dir`. Fails with a message naming whatever is missing.
absl::StatusOr<KubeConfig> loadInCluster(const std::map<std::string, std::string>& env,
                                         const std::string& sa_dir = kServiceAccountDir);
// The same, reading the process environment.
absl::StatusOr<KubeConfig> loadInClusterFromEnvironment(
    const std::string& sa_dir = kServiceAccountDir);

// A kubeconfig file: `context` or, when empty, current-context. File references
// (certificate-authority, client-certificate, client-key, tokenFile) are resolved relative to
// the kubeconfig's directory. Exec and auth-provider plugins are refused with a clear error.
absl::StatusOr<KubeConfig> loadKubeconfig(const std::string& path, const std::string& context = "");

// Reads a whole file; NotFound / PermissionDenied name the path.
absl::StatusOr<std::string> readFile(const std::string& path);

}  // namespace ferry::kube
