// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/config.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "log/log.h"

namespace ferry::controller {

ControllerConfig::Mode ControllerConfig::mode() const {
  if (!manifests_dir.empty()) {
    return Mode::kStandalone;
  }
  if (!kubeconfig.empty()) {
    return Mode::kKubeconfig;
  }
  return Mode::kInCluster;
}

absl::Status ControllerConfig::validate() const {
  const int sources =
      (manifests_dir.empty() ? 0 : 1) + (kubeconfig.empty() ? 0 : 1) + (in_cluster ? 1 : 0);
  if (sources > 1) {
    return absl::InvalidArgumentError(
        "choose one source: --manifests, --kubeconfig or --in-cluster");
  }
  if (!kube_context.empty() && kubeconfig.empty()) {
    return absl::InvalidArgumentError("--context needs --kubeconfig");
  }
  const auto colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--listen: \"", listen, "\" is not host:port"));
  }
  if (trust_domain.empty() || trust_domain.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--trust-domain: \"", trust_domain, "\" is not a trust domain name"));
  }
  if (page_size < 1 || page_size > 10000) {
    return absl::InvalidArgumentError("--page-size must be in 1..10000");
  }
  if (watch_timeout_seconds < 10) {
    return absl::InvalidArgumentError("--watch-timeout-seconds must be at least 10");
  }
  if (reload_debounce_ms < 0 || reload_debounce_ms > 60000) {
    return absl::InvalidArgumentError("--reload-debounce-ms must be in 0..60000");
  }
  if (ca_cert_file.empty() != ca_key_file.empty()) {
    return absl::InvalidArgumentError("--ca-cert and --ca-key go together");
  }
  if (mode() == Mode::kStandalone &&
      (!ca_secret.empty() || leader_elect || !trust_bundle_configmap.empty())) {
    return absl::InvalidArgumentError(
        "--ca-secret, --leader-elect and --trust-bundle-configmap need Kubernetes (not "
        "--manifests)");
  }
  if (!ca_secret.empty() && !ca_cert_file.empty()) {
    return absl::InvalidArgumentError("choose one CA root: --ca-secret or --ca-cert/--ca-key");
  }
  if (ca_secret_generate && ca_secret.empty()) {
    return absl::InvalidArgumentError("--ca-secret-generate needs --ca-secret");
  }
  if (metrics_port < 0 || metrics_port > 65535) {
    return absl::InvalidArgumentError("--metrics-port must be in 0..65535");
  }
  if (resync_seconds < 1) {
    return absl::InvalidArgumentError("--resync-seconds must be at least 1");
  }
  if (cert_lifetime_hours < 1 || cert_lifetime_hours > 24 * 90) {
    return absl::InvalidArgumentError("--cert-lifetime-hours must be in 1..2160");
  }
  if (rotation_overlap_hours < cert_lifetime_hours) {
    return absl::InvalidArgumentError(
        "--rotation-overlap-hours must be at least --cert-lifetime-hours, so certificates the "
        "old root signed expire before it leaves the trust bundle");
  }
  if (!parseLogLevel(log_level)) {
    return absl::InvalidArgumentError("--log-level must be debug, info, warn or error");
  }
  if (mode() == Mode::kStandalone && bootstrap_token_file.empty()) {
    return absl::InvalidArgumentError(
        "--manifests (standalone) needs --bootstrap-token-file: agents prove their node with it");
  }
  return absl::OkStatus();
}

}  // namespace ferry::controller
