// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// ferry-controller's configuration: one struct, a named default per field, parsed from flags
// and validated once at start-up.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::controller {

inline constexpr char kDefaultListen[] = "0.0.0.0:15012";
inline constexpr char kDefaultTrustDomain[] = "cluster.local";
inline constexpr char kDefaultRootNamespace[] = "ferry-system";
inline constexpr int kDefaultPageSize = 500;
inline constexpr int kDefaultWatchTimeoutSeconds = 300;
inline constexpr int kDefaultReloadDebounceMs = 100;
inline constexpr int kDefaultCertLifetimeHours = 24;
inline constexpr char kDefaultCaDir[] = "/var/lib/ferry/ca";
inline constexpr int kDefaultRotationOverlapHours = 48;
inline constexpr char kDefaultAgentServiceAccount[] = "ferry-agent";
inline constexpr char kDefaultTokenAudience[] = "ferry-controller";

struct ControllerConfig {
  enum class Mode { kInCluster, kKubeconfig, kStandalone };

  // Source: exactly one of --manifests, --kubeconfig, --in-cluster (the default when none).
  std::string manifests_dir;
  std::string kubeconfig;
  std::string kube_context;
  bool in_cluster = false;

  std::string listen = kDefaultListen;  // agents: gRPC over mTLS (snapshots + CSRs)
  std::string trust_domain = kDefaultTrustDomain;
  std::string root_namespace = kDefaultRootNamespace;
  int page_size = kDefaultPageSize;
  int watch_timeout_seconds = kDefaultWatchTimeoutSeconds;
  int reload_debounce_ms = kDefaultReloadDebounceMs;

  // Certificate authority: a root from files, or generated on first start and kept in ca_dir.
  std::string ca_cert_file;
  std::string ca_key_file;
  std::string ca_dir = kDefaultCaDir;
  int cert_lifetime_hours = kDefaultCertLifetimeHours;
  // After a rotation (SIGHUP) the old root stays trusted this long.
  int rotation_overlap_hours = kDefaultRotationOverlapHours;
  // Where the current trust bundle is written (at start and after each rotation) for agents'
  // --controller-ca; "" = not written.
  std::string trust_bundle_file;
  // Standalone bootstrap: agents present this token on their first connection. Required in
  // standalone mode; in Kubernetes it replaces TokenReview when given.
  std::string bootstrap_token_file;
  // Kubernetes bootstrap: agents' service account (in root_namespace) and token audience.
  std::string agent_service_account = kDefaultAgentServiceAccount;
  std::string token_audience = kDefaultTokenAudience;

  // Kubernetes modes. The controller's own namespace (Lease, CA Secret, bundle ConfigMap;
  // "" = root_namespace) and its replica name (leader identity; "" = the host name).
  std::string own_namespace;
  std::string pod_name;
  // CA root kept in Secret ca_secret (kubernetes.io/tls) in own_namespace; made once when
  // missing if ca_secret_generate. Rotation: write a new root into the Secret.
  std::string ca_secret;
  bool ca_secret_generate = false;
  // The leader publishes the trust bundle in this ConfigMap (key root-cert.pem); "" = not.
  std::string trust_bundle_configmap;
  // Lease leader election among replicas (only the leader writes the ConfigMap).
  bool leader_elect = false;
  std::string lease_name = "ferry-controller-leader";
  absl::Duration lease_duration = absl::Seconds(15);
  absl::Duration renew_deadline = absl::Seconds(10);
  absl::Duration retry_period = absl::Seconds(2);
  // Prometheus metrics (ferry_controller_*) on 0.0.0.0:<port>; 0 = off.
  int metrics_port = 0;
  // How often the CA Secret is re-read and the bundle re-published (seconds).
  int resync_seconds = 60;
  std::string log_level = "info";  // debug, info, warn or error (log/log.h)

  std::string ownNamespace() const {
    return own_namespace.empty() ? root_namespace : own_namespace;
  }
  Mode mode() const;
  absl::Status validate() const;
};

// In controller/flags.cc (Abseil flags, target ferry_controller_flags): `--flag=value` /
// `--flag value` (args[0] skipped). Unknown flags are errors naming the flag. Does not validate.
absl::StatusOr<ControllerConfig> parseFlags(const std::vector<std::string>& args);
std::string usage();

}  // namespace ferry::controller
