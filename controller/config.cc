// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/config.h"

#include <functional>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ferry::controller {
namespace {

using Setter = std::function<absl::Status(ControllerConfig&, const std::string&)>;

Setter str(std::string ControllerConfig::*field) {
  return [field](ControllerConfig& c, const std::string& v) {
    c.*field = v;
    return absl::OkStatus();
  };
}

Setter integer(int ControllerConfig::*field, const char* name) {
  return [field, name](ControllerConfig& c, const std::string& v) {
    if (!absl::SimpleAtoi(v, &(c.*field))) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, ": \"", v, "\" is not a number"));
    }
    return absl::OkStatus();
  };
}

Setter duration(absl::Duration ControllerConfig::*field, const char* name) {
  return [field, name](ControllerConfig& c, const std::string& v) {
    if (!absl::ParseDuration(v, &(c.*field))) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, ": \"", v, "\" is not a duration (like 15s or 2m)"));
    }
    return absl::OkStatus();
  };
}

Setter flagOn(bool ControllerConfig::*field) {
  return [field](ControllerConfig& c, const std::string&) {
    c.*field = true;
    return absl::OkStatus();
  };
}

struct Flag {
  Setter set;
  const char* help;
  bool boolean = false;
};

const std::map<std::string, Flag>& flags() {
  static const std::map<std::string, Flag> table = {
      {"manifests",
       {str(&ControllerConfig::manifests_dir),
        "standalone: a folder of Kubernetes manifests, reloaded on change"}},
      {"kubeconfig", {str(&ControllerConfig::kubeconfig), "a kubeconfig file"}},
      {"context", {str(&ControllerConfig::kube_context), "kubeconfig context (default: current)"}},
      {"in-cluster",
       {flagOn(&ControllerConfig::in_cluster), "use the pod's service account (the default)",
        true}},
      {"listen", {str(&ControllerConfig::listen), "agent-facing gRPC address (host:port)"}},
      {"trust-domain", {str(&ControllerConfig::trust_domain), "SPIFFE trust domain"}},
      {"root-namespace",
       {str(&ControllerConfig::root_namespace), "namespace whose policies apply mesh-wide"}},
      {"page-size", {integer(&ControllerConfig::page_size, "page-size"), "list page size"}},
      {"watch-timeout-seconds",
       {integer(&ControllerConfig::watch_timeout_seconds, "watch-timeout-seconds"),
        "restart each watch after this long"}},
      {"reload-debounce-ms",
       {integer(&ControllerConfig::reload_debounce_ms, "reload-debounce-ms"),
        "standalone: quiet time before a reload"}},
      {"ca-cert", {str(&ControllerConfig::ca_cert_file), "root CA certificate (PEM)"}},
      {"ca-key", {str(&ControllerConfig::ca_key_file), "root CA private key (PEM)"}},
      {"ca-dir", {str(&ControllerConfig::ca_dir), "where a generated root is kept"}},
      {"cert-lifetime-hours",
       {integer(&ControllerConfig::cert_lifetime_hours, "cert-lifetime-hours"),
        "workload certificate lifetime"}},
      {"bootstrap-token-file",
       {str(&ControllerConfig::bootstrap_token_file),
        "agents' bootstrap tokens, lines \"<token> [node]\" (required in standalone mode)"}},
      {"rotation-overlap-hours",
       {integer(&ControllerConfig::rotation_overlap_hours, "rotation-overlap-hours"),
        "how long a replaced root stays trusted after a rotation (SIGHUP rotates)"}},
      {"trust-bundle-file",
       {str(&ControllerConfig::trust_bundle_file),
        "write the trust bundle here at start and after each rotation (agents' --controller-ca)"}},
      {"agent-service-account",
       {str(&ControllerConfig::agent_service_account),
        "Kubernetes: agents' service account in --root-namespace (TokenReview)"}},
      {"token-audience",
       {str(&ControllerConfig::token_audience), "Kubernetes: audience of agents' tokens"}},
      {"namespace",
       {str(&ControllerConfig::own_namespace),
        "Kubernetes: the controller's namespace (Lease, CA Secret, ConfigMap; default "
        "--root-namespace)"}},
      {"pod-name",
       {str(&ControllerConfig::pod_name), "this replica's name for leader election (host name)"}},
      {"ca-secret",
       {str(&ControllerConfig::ca_secret),
        "Kubernetes: CA root in this kubernetes.io/tls Secret (re-read to rotate)"}},
      {"ca-secret-generate",
       {flagOn(&ControllerConfig::ca_secret_generate),
        "make the --ca-secret root once when the Secret does not exist", true}},
      {"trust-bundle-configmap",
       {str(&ControllerConfig::trust_bundle_configmap),
        "Kubernetes: the leader publishes the trust bundle here (key root-cert.pem)"}},
      {"leader-elect",
       {flagOn(&ControllerConfig::leader_elect), "Kubernetes: Lease leader election", true}},
      {"lease-name", {str(&ControllerConfig::lease_name), "leader-election Lease name"}},
      {"lease-duration",
       {duration(&ControllerConfig::lease_duration, "lease-duration"),
        "a silent leader's lease expires after this"}},
      {"renew-deadline",
       {duration(&ControllerConfig::renew_deadline, "renew-deadline"),
        "a leader that cannot renew this long steps down"}},
      {"retry-period",
       {duration(&ControllerConfig::retry_period, "retry-period"), "leader-election round"}},
      {"metrics-port",
       {integer(&ControllerConfig::metrics_port, "metrics-port"),
        "Prometheus metrics port (0 = off)"}},
      {"resync-seconds",
       {integer(&ControllerConfig::resync_seconds, "resync-seconds"),
        "re-read the CA Secret and re-publish the bundle this often"}},
  };
  return table;
}

}  // namespace

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
  if (mode() == Mode::kStandalone && bootstrap_token_file.empty()) {
    return absl::InvalidArgumentError(
        "--manifests (standalone) needs --bootstrap-token-file: agents prove their node with it");
  }
  return absl::OkStatus();
}

absl::StatusOr<ControllerConfig> parseFlags(const std::vector<std::string>& args) {
  ControllerConfig config;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto flag = flags().find(name);
    if (flag == flags().end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, "\n", usage()));
    }
    if (!has_value && !flag->second.boolean) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    if (auto s = flag->second.set(config, value); !s.ok()) {
      return s;
    }
  }
  return config;
}

std::string usage() {
  std::string out = "usage: ferry-controller [flags]\n";
  for (const auto& [name, flag] : flags()) {
    absl::StrAppend(&out, "  --", name, flag.boolean ? "" : " VALUE", "\n      ", flag.help, "\n");
  }
  return out;
}

}  // namespace ferry::controller
