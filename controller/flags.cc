// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/config.h"

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "flags/flags.h"

namespace {

using Int = ferry::flags::Integer;

// --lease-duration and the other leader-election times.
struct Duration {
  absl::Duration value;
};

bool AbslParseFlag(absl::string_view text, Duration* out, std::string* error) {
  if (!absl::ParseDuration(text, &out->value)) {
    *error = absl::StrCat(": \"", text, "\" is not a duration (like 15s or 2m)");
    return false;
  }
  return true;
}

std::string AbslUnparseFlag(Duration d) {
  return absl::FormatDuration(d.value);
}

const ferry::controller::ControllerConfig kDefaults;

}  // namespace

ABSL_FLAG(std::string, manifests, "",
          "standalone: a folder of Kubernetes manifests, reloaded on change");
ABSL_FLAG(std::string, kubeconfig, "", "a kubeconfig file");
ABSL_FLAG(std::string, context, "", "kubeconfig context (\"\" = current)");
ABSL_FLAG(bool, in_cluster, false, "use the pod's service account (the default)");
ABSL_FLAG(std::string, listen, kDefaults.listen, "agent-facing gRPC address (host:port)");
ABSL_FLAG(std::string, trust_domain, kDefaults.trust_domain, "SPIFFE trust domain");
ABSL_FLAG(std::string, root_namespace, kDefaults.root_namespace,
          "namespace whose policies apply mesh-wide");
ABSL_FLAG(Int, page_size, {kDefaults.page_size}, "list page size (1..10000)");
ABSL_FLAG(Int, watch_timeout_seconds, {kDefaults.watch_timeout_seconds},
          "restart each watch after this long (at least 10)");
ABSL_FLAG(Int, reload_debounce_ms, {kDefaults.reload_debounce_ms},
          "standalone: quiet time before a reload (0..60000)");
ABSL_FLAG(std::string, ca_cert, "", "root CA certificate (PEM), with --ca-key");
ABSL_FLAG(std::string, ca_key, "", "root CA private key (PEM), with --ca-cert");
ABSL_FLAG(std::string, ca_dir, kDefaults.ca_dir, "where a generated root is kept");
ABSL_FLAG(Int, cert_lifetime_hours, {kDefaults.cert_lifetime_hours},
          "workload certificate lifetime (1..2160)");
ABSL_FLAG(std::string, bootstrap_token_file, "",
          "agents' bootstrap tokens, lines \"<token> [node]\" (required in standalone mode)");
ABSL_FLAG(Int, rotation_overlap_hours, {kDefaults.rotation_overlap_hours},
          "how long a replaced root stays trusted after a rotation (SIGHUP rotates); at least\n"
          "--cert-lifetime-hours");
ABSL_FLAG(std::string, trust_bundle_file, "",
          "write the trust bundle here at start and after each rotation (agents'\n"
          "--controller-ca); \"\" = not written");
ABSL_FLAG(std::string, agent_service_account, kDefaults.agent_service_account,
          "Kubernetes: agents' service account in --root-namespace (TokenReview)");
ABSL_FLAG(std::string, token_audience, kDefaults.token_audience,
          "Kubernetes: audience of agents' tokens");
ABSL_FLAG(std::string, namespace, "",
          "Kubernetes: the controller's namespace (Lease, CA Secret, ConfigMap; \"\" =\n"
          "--root-namespace)");
ABSL_FLAG(std::string, pod_name, "",
          "this replica's name for leader election (\"\" = the host name)");
ABSL_FLAG(std::string, ca_secret, "",
          "Kubernetes: CA root in this kubernetes.io/tls Secret (re-read to rotate)");
ABSL_FLAG(bool, ca_secret_generate, false,
          "make the --ca-secret root once when the Secret does not exist");
ABSL_FLAG(std::string, trust_bundle_configmap, "",
          "Kubernetes: the leader publishes the trust bundle here (key root-cert.pem)");
ABSL_FLAG(bool, leader_elect, false, "Kubernetes: Lease leader election");
ABSL_FLAG(std::string, lease_name, kDefaults.lease_name, "leader-election Lease name");
ABSL_FLAG(Duration, lease_duration, {kDefaults.lease_duration},
          "a silent leader's lease expires after this");
ABSL_FLAG(Duration, renew_deadline, {kDefaults.renew_deadline},
          "a leader that cannot renew this long steps down");
ABSL_FLAG(Duration, retry_period, {kDefaults.retry_period}, "leader-election round");
ABSL_FLAG(Int, metrics_port, {kDefaults.metrics_port}, "Prometheus metrics port (0 = off)");
ABSL_FLAG(Int, resync_seconds, {kDefaults.resync_seconds},
          "re-read the CA Secret and re-publish the bundle this often");
ABSL_FLAG(std::string, log_level, kDefaults.log_level, "debug, info, warn or error");

namespace ferry::controller {
namespace {

constexpr char kSourceFile[] = "controller/flags.cc";

ControllerConfig fromFlags() {
  ControllerConfig c;
  c.manifests_dir = absl::GetFlag(FLAGS_manifests);
  c.kubeconfig = absl::GetFlag(FLAGS_kubeconfig);
  c.kube_context = absl::GetFlag(FLAGS_context);
  c.in_cluster = absl::GetFlag(FLAGS_in_cluster);
  c.listen = absl::GetFlag(FLAGS_listen);
  c.trust_domain = absl::GetFlag(FLAGS_trust_domain);
  c.root_namespace = absl::GetFlag(FLAGS_root_namespace);
  c.page_size = absl::GetFlag(FLAGS_page_size).value;
  c.watch_timeout_seconds = absl::GetFlag(FLAGS_watch_timeout_seconds).value;
  c.reload_debounce_ms = absl::GetFlag(FLAGS_reload_debounce_ms).value;
  c.ca_cert_file = absl::GetFlag(FLAGS_ca_cert);
  c.ca_key_file = absl::GetFlag(FLAGS_ca_key);
  c.ca_dir = absl::GetFlag(FLAGS_ca_dir);
  c.cert_lifetime_hours = absl::GetFlag(FLAGS_cert_lifetime_hours).value;
  c.rotation_overlap_hours = absl::GetFlag(FLAGS_rotation_overlap_hours).value;
  c.trust_bundle_file = absl::GetFlag(FLAGS_trust_bundle_file);
  c.bootstrap_token_file = absl::GetFlag(FLAGS_bootstrap_token_file);
  c.agent_service_account = absl::GetFlag(FLAGS_agent_service_account);
  c.token_audience = absl::GetFlag(FLAGS_token_audience);
  c.own_namespace = absl::GetFlag(FLAGS_namespace);
  c.pod_name = absl::GetFlag(FLAGS_pod_name);
  c.ca_secret = absl::GetFlag(FLAGS_ca_secret);
  c.ca_secret_generate = absl::GetFlag(FLAGS_ca_secret_generate);
  c.trust_bundle_configmap = absl::GetFlag(FLAGS_trust_bundle_configmap);
  c.leader_elect = absl::GetFlag(FLAGS_leader_elect);
  c.lease_name = absl::GetFlag(FLAGS_lease_name);
  c.lease_duration = absl::GetFlag(FLAGS_lease_duration).value;
  c.renew_deadline = absl::GetFlag(FLAGS_renew_deadline).value;
  c.retry_period = absl::GetFlag(FLAGS_retry_period).value;
  c.metrics_port = absl::GetFlag(FLAGS_metrics_port).value;
  c.resync_seconds = absl::GetFlag(FLAGS_resync_seconds).value;
  c.log_level = absl::GetFlag(FLAGS_log_level);
  return c;
}

}  // namespace

absl::StatusOr<ControllerConfig> parseFlags(const std::vector<std::string>& args) {
  const std::vector<std::string> flags_only(args.empty() ? args.begin() : args.begin() + 1,
                                            args.end());
  if (absl::Status s = flags::parse(flags_only, kSourceFile); !s.ok()) {
    if (absl::StartsWith(s.message(), "unknown flag")) {
      return absl::InvalidArgumentError(absl::StrCat(s.message(), "\n", usage()));
    }
    return s;
  }
  return fromFlags();
}

std::string usage() {
  return flags::help("usage: ferry-controller [flags]", kSourceFile);
}

}  // namespace ferry::controller
