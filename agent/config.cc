// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/config.h"

#include <algorithm>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "log/log.h"
#include "net/ip.h"

namespace ferry::agent {

std::string Config::stateFile() const {
  return state_file.empty() ? "/run/ferry/" + node_name + "/pods.json" : state_file;
}

std::string Config::handoverSocket() const {
  return handover_socket.empty() ? enroll_socket + ".handover" : handover_socket;
}

int Config::workerCount() const {
  if (workers > 0) {
    return workers;
  }
  unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : static_cast<int>(cores);
}

size_t Config::poolSpread() const {
  return pool_connections_per_peer > 0 ? pool_connections_per_peer
                                       : static_cast<size_t>(workerCount());
}

absl::Status Config::validate() const {
  if (node_name.empty()) {
    return absl::InvalidArgumentError("--node is required (the node this agent serves)");
  }
  if (workers < 0 || workers > 256) {
    return absl::InvalidArgumentError("--workers must be between 0 (one per core) and 256");
  }
  // A Prometheus label value and a baggage value: kept to what a Kubernetes name allows.
  if (cluster_name.empty() || cluster_name.size() > 63 ||
      !std::all_of(cluster_name.begin(), cluster_name.end(), [](char ch) {
        return absl::ascii_isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
      })) {
    return absl::InvalidArgumentError(
        "--cluster-name must be 1-63 letters, digits, '-', '_' or "
        "'.', got \"" +
        cluster_name + "\"");
  }
  if (capture != "bpf" && capture != "none") {
    return absl::InvalidArgumentError("--capture must be \"bpf\" or \"none\", got \"" + capture +
                                      "\"");
  }
  if (capture == "bpf" && (cgroup_path.empty() || bpffs_dir.empty())) {
    return absl::InvalidArgumentError(
        "--capture=bpf needs --cgroup (the node's pod cgroup subtree) and --bpffs (pin folder)");
  }
  if (!controller.empty()) {
    if (!certs_dir.empty() || !manifests_dir.empty()) {
      return absl::InvalidArgumentError(
          "--controller replaces --certs and --manifests: give either the controller or both "
          "folders");
    }
    if (controller.rfind(':') == std::string::npos) {
      return absl::InvalidArgumentError("--controller must be HOST:PORT, got \"" + controller +
                                        "\"");
    }
    if (bootstrap_token_file.empty() || controller_ca.empty()) {
      return absl::InvalidArgumentError(
          "--controller needs --bootstrap-token-file and --controller-ca (roots, PEM)");
    }
  } else if (certs_dir.empty()) {
    return absl::InvalidArgumentError(
        "--certs is required (folder of <ns>.<sa>.crt/.key and bundle.pem), or --controller");
  }
  for (const std::string& cidr : pod_cidrs) {
    if (auto parsed = net::Cidr::parse(cidr); !parsed.ok()) {
      return absl::InvalidArgumentError("--pod-cidrs: \"" + cidr + "\" is not a CIDR");
    }
  }
  if (max_buffer_bytes < 16 * 1024 || max_buffer_bytes > 64 * 1024 * 1024) {
    return absl::InvalidArgumentError("--max-buffer-bytes must be between 16 KiB and 64 MiB");
  }
  if (max_streams_per_connection == 0) {
    return absl::InvalidArgumentError("--max-streams-per-connection must be at least 1");
  }
  if (http_header_timeout_ms == 0 || http_idle_timeout_ms == 0) {
    return absl::InvalidArgumentError(
        "--http-header-timeout-ms and --http-idle-timeout-ms must be at least 1");
  }
  if (max_http_awaiting_headers == 0) {
    return absl::InvalidArgumentError("--max-http-awaiting-headers must be at least 1");
  }
  if (!parseLogLevel(log_level)) {
    return absl::InvalidArgumentError("--log-level must be debug, info, warn or error");
  }
  if (!(access_log_sample >= 0.0 && access_log_sample <= 1.0)) {
    return absl::InvalidArgumentError("--access-log-sample must be between 0 and 1");
  }
  if (!(trace_sampling >= 0.0 && trace_sampling <= 1.0)) {
    return absl::InvalidArgumentError("--trace-sampling must be between 0 and 1");
  }
  if (!trace_endpoint.empty() && !trace_endpoint.starts_with("http://") &&
      !trace_endpoint.starts_with("https://")) {
    return absl::InvalidArgumentError(
        "--trace-endpoint must be an OTLP/HTTP URL, e.g. http://otel-collector:4318/v1/traces");
  }
  if (trace_batch_spans > trace_queue_spans) {
    return absl::InvalidArgumentError("--trace-batch-spans must not exceed --trace-queue-spans");
  }
  return absl::OkStatus();
}

}  // namespace ferry::agent
