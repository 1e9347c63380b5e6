// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/config.h"

#include <algorithm>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
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
  if (log_level != "debug" && log_level != "info" && log_level != "warn" && log_level != "error") {
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

namespace {

template <typename T>
absl::Status parseNumber(const std::string& flag, const std::string& text, T min, T max, T& out) {
  uint64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v < static_cast<uint64_t>(min) ||
      v > static_cast<uint64_t>(max)) {
    return absl::InvalidArgumentError("--" + flag + ": \"" + text + "\" is not a number in [" +
                                      std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  out = static_cast<T>(v);
  return absl::OkStatus();
}

absl::Status parseOnOff(const std::string& flag, const std::string& value, bool& out) {
  if (value != "on" && value != "off") {
    return absl::InvalidArgumentError("--" + flag + " must be on or off, got \"" + value + "\"");
  }
  out = value == "on";
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> parseFlags(const std::vector<std::string>& args) {
  Config c;
  for (const std::string& arg : args) {
    if (arg.rfind("--", 0) != 0 || arg.find('=') == std::string::npos) {
      return absl::InvalidArgumentError("expected --name=value, got \"" + arg + "\"\n" + usage());
    }
    std::string name = arg.substr(2, arg.find('=') - 2);
    std::string value = arg.substr(arg.find('=') + 1);
    absl::Status s = absl::OkStatus();
    if (name == "node") {
      c.node_name = value;
    } else if (name == "workers") {
      s = parseNumber(name, value, 0, 256, c.workers);
    } else if (name == "enroll-socket") {
      c.enroll_socket = value;
    } else if (name == "state-file") {
      c.state_file = value;
    } else if (name == "manifests") {
      c.manifests_dir = value;
    } else if (name == "certs") {
      c.certs_dir = value;
    } else if (name == "controller") {
      c.controller = value;
    } else if (name == "bootstrap-token-file") {
      c.bootstrap_token_file = value;
    } else if (name == "controller-ca") {
      c.controller_ca = value;
    } else if (name == "trust-domain") {
      c.trust_domain = value;
    } else if (name == "cluster-name") {
      c.cluster_name = value;
    } else if (name == "admin-address") {
      c.admin_address = value;
    } else if (name == "admin-port") {
      s = parseNumber<uint16_t>(name, value, 0, 65535, c.admin_port);
    } else if (name == "capture") {
      c.capture = value;
    } else if (name == "cgroup") {
      c.cgroup_path = value;
    } else if (name == "bpffs") {
      c.bpffs_dir = value;
    } else if (name == "pod-cidrs") {
      c.pod_cidrs = absl::StrSplit(value, ',', absl::SkipEmpty());
    } else if (name == "service-cidrs") {
      c.service_cidrs = absl::StrSplit(value, ',', absl::SkipEmpty());
    } else if (name == "socket-mark") {
      s = parseNumber<uint32_t>(name, value, 0, UINT32_MAX, c.socket_mark);
    } else if (name == "max-buffer-bytes") {
      s = parseNumber<size_t>(name, value, 0, SIZE_MAX, c.max_buffer_bytes);
    } else if (name == "max-streams-per-connection") {
      s = parseNumber<uint32_t>(name, value, 0, 100000, c.max_streams_per_connection);
    } else if (name == "connect-timeout-ms") {
      s = parseNumber<uint32_t>(name, value, 1, 600000, c.connect_timeout_ms);
    } else if (name == "pool-idle-timeout-ms") {
      s = parseNumber<uint32_t>(name, value, 1, 3600000, c.pool_idle_timeout_ms);
    } else if (name == "outlier-base-ejection-ms") {
      s = parseNumber<uint32_t>(name, value, 0, 3600000, c.outlier_base_ejection_ms);
    } else if (name == "http-header-timeout-ms") {
      s = parseNumber<uint32_t>(name, value, 1, 3600000, c.http_header_timeout_ms);
    } else if (name == "max-http-awaiting-headers") {
      s = parseNumber<uint32_t>(name, value, 1, 1000000, c.max_http_awaiting_headers);
    } else if (name == "http-idle-timeout-ms") {
      s = parseNumber<uint32_t>(name, value, 1, 86400000, c.http_idle_timeout_ms);
    } else if (name == "fd-reserve") {
      s = parseOnOff(name, value, c.fd_reserve);
    } else if (name == "drain-grace") {
      absl::Duration d;
      if (!absl::ParseDuration(value, &d) || d < absl::ZeroDuration() || d > absl::Hours(1)) {
        return absl::InvalidArgumentError("--drain-grace: \"" + value +
                                          "\" is not a duration between 0s and 1h (30s, 500ms)");
      }
      c.drain_grace_ms = static_cast<uint32_t>(absl::ToInt64Milliseconds(d));
    } else if (name == "handover-socket") {
      c.handover_socket = value;
    } else if (name == "log-level") {
      c.log_level = value;
    } else if (name == "metrics-address") {
      c.metrics_address = value == "off" ? "" : value;
    } else if (name == "metrics-port") {
      uint16_t port = 0;
      s = parseNumber<uint16_t>(name, value, 0, 65535, port);
      c.metrics_address = "0.0.0.0:" + std::to_string(port);
    } else if (name == "readiness-address") {
      c.readiness_address = value;
    } else if (name == "readiness-port") {
      s = parseNumber<uint16_t>(name, value, 0, 65535, c.readiness_port);
    } else if (name == "access-log") {
      s = parseOnOff(name, value, c.access_log);
    } else if (name == "access-log-sample") {
      if (!absl::SimpleAtod(value, &c.access_log_sample)) {
        return absl::InvalidArgumentError("--access-log-sample: \"" + value + "\" is not a number");
      }
    } else if (name == "trace-endpoint") {
      c.trace_endpoint = value;
    } else if (name == "trace-sampling") {
      if (!absl::SimpleAtod(value, &c.trace_sampling)) {
        return absl::InvalidArgumentError("--trace-sampling: \"" + value + "\" is not a number");
      }
    } else if (name == "trace-queue-spans") {
      s = parseNumber<uint32_t>(name, value, 1, 1000000, c.trace_queue_spans);
    } else if (name == "trace-batch-spans") {
      s = parseNumber<uint32_t>(name, value, 1, 100000, c.trace_batch_spans);
    } else {
      return absl::InvalidArgumentError("unknown flag --" + name + "\n" + usage());
    }
    if (!s.ok()) {
      return s;
    }
  }
  if (absl::Status s = c.validate(); !s.ok()) {
    return s;
  }
  return c;
}

std::string usage() {
  return R"(usage: ferry-agent --node=NAME (--certs=DIR [--manifests=DIR] | --controller=HOST:PORT
                   --bootstrap-token-file=PATH --controller-ca=PATH) [flags]
  --node=NAME                   node this agent serves (required)
  --certs=DIR                   <ns>.<sa>.crt/.key and bundle.pem
  --manifests=DIR               workloads, services and policies as Kubernetes manifests
  --controller=HOST:PORT        state and workload certificates from ferry-controller
  --bootstrap-token-file=PATH   the node's bootstrap token (first connection to the controller)
  --controller-ca=PATH          roots that authenticate the controller (its --trust-bundle-file)
  --trust-domain=TD             SPIFFE trust domain (cluster.local)
  --cluster-name=NAME           this cluster in telemetry: source_cluster/destination_cluster
                                and the HBONE baggage (Kubernetes, as Istio's default)
  --workers=N                   worker threads, 0 = one per core (0)
  --enroll-socket=PATH          enrollment socket (/run/ferry/agent.sock)
  --state-file=PATH             enrolled-pod journal (/run/ferry/<node>/pods.json)
  --admin-address=IP --admin-port=N   admin endpoint (127.0.0.1:15000; port 0 = any)
  --capture=bpf|none            load the eBPF capture (bpf) or not (none)
  --cgroup=PATH --bpffs=DIR     pod cgroup subtree and pin folder for the capture
  --pod-cidrs=A,B --service-cidrs=C,D   ranges captured (10.244.0.0/16,fd00:244::/64 and
                                10.96.0.0/16,fd00:96::/112); a captured connection to a pod
                                address no snapshot names is refused, never sent in clear
  --socket-mark=N               SO_MARK on the agent's sockets (0 = none)
  --max-buffer-bytes=N          per-direction buffer bound per connection (262144)
  --max-streams-per-connection=N   HBONE streams per pooled connection (100)
  --connect-timeout-ms=N --pool-idle-timeout-ms=N
  --outlier-base-ejection-ms=N  routed services: base ejection interval (0 = 30 s default)
  --http-header-timeout-ms=N    inbound HTTP: time for a complete request head (10000)
  --max-http-awaiting-headers=N inbound HTTP: connections waiting for a head, per agent (1024);
                                beyond it a new one closes its worker's oldest waiter
  --http-idle-timeout-ms=N      inbound HTTP: keep-alive idle time between requests (3600000)
  --fd-reserve=on|off           out of descriptors, refuse queued connections with a spare one
                                instead of leaving them queued while accepts pause (off)
  --drain-grace=DURATION         after SIGTERM: keep the listeners until a successor takes them
                                over and serve connections until they end, at most this long
                                (5s; match the pod's terminationGracePeriodSeconds)
  --handover-socket=PATH        where a starting agent takes the listeners over from the
                                running one (<enroll socket>.handover)
  --log-level=debug|info|warn|error
  --metrics-address=IP:PORT     Prometheus endpoint (0.0.0.0:15020; "off" = none; port 0 = any)
  --metrics-port=N              same as --metrics-address=0.0.0.0:N
  --readiness-address=IP --readiness-port=N   /healthz/ready (0.0.0.0:15021; port 0 = any)
  --access-log=on|off --access-log-sample=F   JSON access log to stdout, share written (on, 1)
  --trace-endpoint=URL          send a span per HTTP request to this OTLP/HTTP collector
                                (http://HOST:4318/v1/traces, protobuf; "" = none)
  --trace-sampling=F            share of new traces sampled, 0..1 (0.01); a request with a
                                valid traceparent follows its sampled flag
  --trace-queue-spans=N --trace-batch-spans=N   spans held for the collector at most (4096;
                                beyond: dropped and counted) and sent per request (512))";
}

}  // namespace ferry::agent
