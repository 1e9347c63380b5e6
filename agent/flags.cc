// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/config.h"

#include <cstdint>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "flags/flags.h"

namespace {

using ferry::flags::List;
using ferry::flags::Number;
using ferry::flags::OnOff;
using ferry::flags::Real;
namespace agent = ferry::agent;

using Workers = Number<int, 0, 256>;
using Number0To100000 = Number<uint32_t, 0, 100000>;
using Number1To600000 = Number<uint32_t, 1, 600000>;
using Number1To3600000 = Number<uint32_t, 1, 3600000>;
using Number0To3600000 = Number<uint32_t, 0, 3600000>;
using Number1To1000000 = Number<uint32_t, 1, 1000000>;
using Number1To86400000 = Number<uint32_t, 1, 86400000>;
using Number1To100000 = Number<uint32_t, 1, 100000>;

// --drain-grace: a duration between 0s and 1h.
struct DrainGrace {
  absl::Duration value;
};

bool AbslParseFlag(absl::string_view text, DrainGrace* out, std::string* error) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration() || d > absl::Hours(1)) {
    *error = absl::StrCat(": \"", text, "\" is not a duration between 0s and 1h (30s, 500ms)");
    return false;
  }
  out->value = d;
  return true;
}

std::string AbslUnparseFlag(DrainGrace d) {
  return absl::FormatDuration(d.value);
}

const agent::Config kDefaults;

}  // namespace

ABSL_FLAG(std::string, node, "", "node this agent serves (required)");
ABSL_FLAG(std::string, certs, "", "folder of <ns>.<sa>.crt/.key and bundle.pem");
ABSL_FLAG(std::string, manifests, "", "workloads, services and policies as Kubernetes manifests");
ABSL_FLAG(std::string, controller, "",
          "HOST:PORT: state and workload certificates from ferry-controller");
ABSL_FLAG(std::string, bootstrap_token_file, "",
          "the node's bootstrap token (first connection to the controller)");
ABSL_FLAG(std::string, controller_ca, "",
          "roots that authenticate the controller (its --trust-bundle-file)");
ABSL_FLAG(std::string, trust_domain, kDefaults.trust_domain, "SPIFFE trust domain");
ABSL_FLAG(std::string, cluster_name, kDefaults.cluster_name,
          "this cluster in telemetry: source_cluster/destination_cluster and the HBONE baggage\n"
          "(Kubernetes, as Istio's default)");
ABSL_FLAG(Workers, workers, {kDefaults.workers}, "worker threads, 0 = one per core");
ABSL_FLAG(std::string, enroll_socket, kDefaults.enroll_socket, "enrollment socket");
ABSL_FLAG(std::string, state_file, "", "enrolled-pod journal (\"\" = /run/ferry/<node>/pods.json)");
ABSL_FLAG(std::string, admin_address, kDefaults.admin_address, "admin endpoint address");
ABSL_FLAG(Number<uint16_t>, admin_port, {kDefaults.admin_port},
          "admin endpoint port (0 = any, logged at start)");
ABSL_FLAG(std::string, capture, kDefaults.capture,
          "bpf: load the eBPF capture for this node; none: no capture");
ABSL_FLAG(std::string, cgroup, "", "pod cgroup subtree the capture attaches to (--capture=bpf)");
ABSL_FLAG(std::string, bpffs, "", "pin folder for the capture's links and maps (--capture=bpf)");
ABSL_FLAG(List, pod_cidrs, {kDefaults.pod_cidrs},
          "pod ranges captured; a captured connection to a pod address no snapshot names is\n"
          "refused, never sent in clear");
ABSL_FLAG(List, service_cidrs, {kDefaults.service_cidrs}, "service (VIP) ranges captured");
ABSL_FLAG(OnOff, bpf_splice, {kDefaults.bpf_splice},
          "same-node sockmap splice of app <-> agent sockets (--capture=bpf); off: an app socket\n"
          "in a sockmap can see EAGAIN from a blocking recv() (bpf/README.md)");
ABSL_FLAG(OnOff, same_node_direct, {kDefaults.same_node_direct},
          "same-node direct path (--capture=bpf): once the agent has admitted an L4-only\n"
          "connection between two pods of this node, the pair's next connections go app to app\n"
          "in the kernel, with telemetry and revocation kept (bpf/README.md)");
ABSL_FLAG(Number<uint32_t>, socket_mark, {kDefaults.socket_mark},
          "SO_MARK on the agent's sockets (0 = none)");
ABSL_FLAG(Number<size_t>, max_buffer_bytes, {kDefaults.max_buffer_bytes},
          "per-direction buffer bound per connection (16 KiB to 64 MiB)");
ABSL_FLAG(Number0To100000, max_streams_per_connection, {kDefaults.max_streams_per_connection},
          "HBONE streams per pooled connection");
ABSL_FLAG(Number0To100000, pool_connections_per_peer, {kDefaults.pool_connections_per_peer},
          "pooled HBONE connections per source pod, destination pod and worker that "
          "concurrent streams spread over (0 = as many as the agent has workers)");
ABSL_FLAG(Number1To600000, connect_timeout_ms, {kDefaults.connect_timeout_ms},
          "upstream connect timeout");
ABSL_FLAG(Number1To3600000, pool_idle_timeout_ms, {kDefaults.pool_idle_timeout_ms},
          "a pooled HBONE connection idle this long closes");
ABSL_FLAG(Number0To3600000, outlier_base_ejection_ms, {kDefaults.outlier_base_ejection_ms},
          "routed services: base ejection interval (0 = 30 s default)");
ABSL_FLAG(Number1To3600000, http_header_timeout_ms, {kDefaults.http_header_timeout_ms},
          "inbound HTTP: time for a complete request head");
ABSL_FLAG(Number1To1000000, max_http_awaiting_headers, {kDefaults.max_http_awaiting_headers},
          "inbound HTTP: connections waiting for a head, per agent; beyond it a new one closes\n"
          "its worker's oldest waiter");
ABSL_FLAG(Number1To86400000, http_idle_timeout_ms, {kDefaults.http_idle_timeout_ms},
          "inbound HTTP: keep-alive idle time between requests");
ABSL_FLAG(OnOff, fd_reserve, {kDefaults.fd_reserve},
          "out of descriptors, refuse queued connections with a spare one instead of leaving\n"
          "them queued while accepts pause");
ABSL_FLAG(DrainGrace, drain_grace, {absl::Milliseconds(kDefaults.drain_grace_ms)},
          "after SIGTERM: keep the listeners until a successor takes them over and serve\n"
          "connections until they end, at most this long (match the pod's\n"
          "terminationGracePeriodSeconds); a second signal ends it at once");
ABSL_FLAG(std::string, handover_socket, "",
          "where a starting agent takes the listeners over from the running one\n"
          "(\"\" = <enroll socket>.handover)");
ABSL_FLAG(OnOff, stream_resume, {kDefaults.stream_resume},
          "offer L4 HBONE streams for resumption, so that they survive an agent upgrade on\n"
          "either node (docs/upgrades.md); off: streams are drained, as by agents before it");
ABSL_FLAG(Number1To600000, resume_window_ms, {kDefaults.resume_window_ms},
          "a stream whose peer agent hands it over waits this long for its resume");
ABSL_FLAG(std::string, log_level, kDefaults.log_level, "debug, info, warn or error");
ABSL_FLAG(std::string, metrics_address, kDefaults.metrics_address,
          "Prometheus endpoint IP:PORT (\"off\" = none; port 0 = any)");
ABSL_FLAG(std::string, metrics_port, "", "N: the same as --metrics-address=0.0.0.0:N");
ABSL_FLAG(std::string, readiness_address, kDefaults.readiness_address, "/healthz/ready address");
ABSL_FLAG(Number<uint16_t>, readiness_port, {kDefaults.readiness_port},
          "/healthz/ready port (0 = any)");
ABSL_FLAG(OnOff, access_log, {kDefaults.access_log}, "JSON access log to stdout");
ABSL_FLAG(Real, access_log_sample, {kDefaults.access_log_sample},
          "share of access-log lines written, 0..1");
ABSL_FLAG(std::string, trace_endpoint, "",
          "send a span per HTTP request to this OTLP/HTTP collector\n"
          "(http://HOST:4318/v1/traces, protobuf; \"\" = none)");
ABSL_FLAG(Real, trace_sampling, {kDefaults.trace_sampling},
          "share of new traces sampled, 0..1; a request with a valid traceparent follows its\n"
          "sampled flag");
ABSL_FLAG(Number1To1000000, trace_queue_spans, {kDefaults.trace_queue_spans},
          "spans held for the collector at most (beyond: dropped and counted)");
ABSL_FLAG(Number1To100000, trace_batch_spans, {kDefaults.trace_batch_spans},
          "spans sent per request to the collector");

namespace ferry::agent {
namespace {

constexpr char kSourceFile[] = "agent/flags.cc";

// The last flags parsed, as a Config.
Config fromFlags() {
  Config c;
  c.node_name = absl::GetFlag(FLAGS_node);
  c.workers = absl::GetFlag(FLAGS_workers).value;
  c.enroll_socket = absl::GetFlag(FLAGS_enroll_socket);
  c.state_file = absl::GetFlag(FLAGS_state_file);
  c.manifests_dir = absl::GetFlag(FLAGS_manifests);
  c.certs_dir = absl::GetFlag(FLAGS_certs);
  c.controller = absl::GetFlag(FLAGS_controller);
  c.bootstrap_token_file = absl::GetFlag(FLAGS_bootstrap_token_file);
  c.controller_ca = absl::GetFlag(FLAGS_controller_ca);
  c.trust_domain = absl::GetFlag(FLAGS_trust_domain);
  c.cluster_name = absl::GetFlag(FLAGS_cluster_name);
  c.admin_address = absl::GetFlag(FLAGS_admin_address);
  c.admin_port = absl::GetFlag(FLAGS_admin_port).value;
  c.capture = absl::GetFlag(FLAGS_capture);
  c.cgroup_path = absl::GetFlag(FLAGS_cgroup);
  c.bpffs_dir = absl::GetFlag(FLAGS_bpffs);
  c.pod_cidrs = absl::GetFlag(FLAGS_pod_cidrs).items;
  c.service_cidrs = absl::GetFlag(FLAGS_service_cidrs).items;
  c.socket_mark = absl::GetFlag(FLAGS_socket_mark).value;
  c.bpf_splice = absl::GetFlag(FLAGS_bpf_splice).value;
  c.same_node_direct = absl::GetFlag(FLAGS_same_node_direct).value;
  c.max_buffer_bytes = absl::GetFlag(FLAGS_max_buffer_bytes).value;
  c.max_streams_per_connection = absl::GetFlag(FLAGS_max_streams_per_connection).value;
  c.pool_connections_per_peer = absl::GetFlag(FLAGS_pool_connections_per_peer).value;
  c.connect_timeout_ms = absl::GetFlag(FLAGS_connect_timeout_ms).value;
  c.pool_idle_timeout_ms = absl::GetFlag(FLAGS_pool_idle_timeout_ms).value;
  c.outlier_base_ejection_ms = absl::GetFlag(FLAGS_outlier_base_ejection_ms).value;
  c.http_header_timeout_ms = absl::GetFlag(FLAGS_http_header_timeout_ms).value;
  c.max_http_awaiting_headers = absl::GetFlag(FLAGS_max_http_awaiting_headers).value;
  c.http_idle_timeout_ms = absl::GetFlag(FLAGS_http_idle_timeout_ms).value;
  c.fd_reserve = absl::GetFlag(FLAGS_fd_reserve).value;
  c.drain_grace_ms =
      static_cast<uint32_t>(absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_drain_grace).value));
  c.handover_socket = absl::GetFlag(FLAGS_handover_socket);
  c.stream_resume = absl::GetFlag(FLAGS_stream_resume).value;
  c.resume_window_ms = absl::GetFlag(FLAGS_resume_window_ms).value;
  c.log_level = absl::GetFlag(FLAGS_log_level);
  c.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  if (c.metrics_address == "off") {
    c.metrics_address = "";
  }
  c.readiness_address = absl::GetFlag(FLAGS_readiness_address);
  c.readiness_port = absl::GetFlag(FLAGS_readiness_port).value;
  c.access_log = absl::GetFlag(FLAGS_access_log).value;
  c.access_log_sample = absl::GetFlag(FLAGS_access_log_sample).value;
  c.trace_endpoint = absl::GetFlag(FLAGS_trace_endpoint);
  c.trace_sampling = absl::GetFlag(FLAGS_trace_sampling).value;
  c.trace_queue_spans = absl::GetFlag(FLAGS_trace_queue_spans).value;
  c.trace_batch_spans = absl::GetFlag(FLAGS_trace_batch_spans).value;
  return c;
}

}  // namespace

absl::StatusOr<Config> parseFlags(const std::vector<std::string>& args) {
  if (absl::Status s = flags::parse(args, kSourceFile); !s.ok()) {
    if (absl::StartsWith(s.message(), "unknown flag") ||
        absl::StartsWith(s.message(), "unexpected argument")) {
      return absl::InvalidArgumentError(absl::StrCat(s.message(), "\n", usage()));
    }
    return s;
  }
  Config c = fromFlags();
  // --metrics-port=N is --metrics-address=0.0.0.0:N.
  if (const std::string port = absl::GetFlag(FLAGS_metrics_port); !port.empty()) {
    Number<uint16_t> parsed;
    std::string error;
    if (!AbslParseFlag(port, &parsed, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("--metrics-port", error));
    }
    c.metrics_address = absl::StrCat("0.0.0.0:", parsed.value);
  }
  if (absl::Status s = c.validate(); !s.ok()) {
    return s;
  }
  return c;
}

std::string usage() {
  return flags::help(
      R"(usage: ferry-agent --node=NAME (--certs=DIR [--manifests=DIR] | --controller=HOST:PORT
                   --bootstrap-token-file=PATH --controller-ca=PATH) [flags])",
      kSourceFile);
}

}  // namespace ferry::agent
