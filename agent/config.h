// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The agent's configuration: one struct, a named default per field, validated once at start-up.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::agent {

inline constexpr uint16_t kDefaultAdminPort = 15000;
inline constexpr uint16_t kOutboundPort = 15001;
inline constexpr uint16_t kInboundPlainPort = 15006;
inline constexpr uint16_t kHbonePort = 15008;
inline constexpr char kDefaultMetricsAddress[] = "0.0.0.0:15020";
inline constexpr uint16_t kDefaultReadinessPort = 15021;
inline constexpr char kDefaultEnrollSocket[] = "/run/ferry/agent.sock";
inline constexpr char kDefaultTrustDomain[] = "cluster.local";
inline constexpr char kDefaultClusterName[] = "Kubernetes";  // Istio's default cluster ID
inline constexpr size_t kDefaultMaxBufferBytes = 256 * 1024;
inline constexpr uint32_t kDefaultMaxStreamsPerConnection = 100;
inline constexpr uint32_t kDefaultConnectTimeoutMs = 5000;
inline constexpr uint32_t kDefaultPoolIdleTimeoutMs = 60000;
inline constexpr uint32_t kDefaultHttpHeaderTimeoutMs = 10000;
inline constexpr uint32_t kDefaultMaxHttpAwaitingHeaders = 1024;
inline constexpr uint32_t kDefaultHttpIdleTimeoutMs = 3600000;
inline constexpr uint32_t kDefaultDrainGraceMs = 5000;
inline constexpr double kDefaultTraceSampling = 0.01;  // Istio's default: 1% of new traces
inline constexpr uint32_t kDefaultTraceQueueSpans = 4096;
inline constexpr uint32_t kDefaultTraceBatchSpans = 512;

struct Config {
  std::string node_name;  // required: which node this agent serves
  int workers = 0;        // 0: one per core
  std::string enroll_socket = kDefaultEnrollSocket;
  std::string state_file;     // "": /run/ferry/<node>/pods.json
  std::string manifests_dir;  // workloads, services, policies (standalone mode)
  std::string certs_dir;      // <ns>.<sa>.crt/.key + bundle.pem
  // Or both from ferry-controller (instead of manifests_dir and certs_dir).
  std::string controller;            // host:port
  std::string bootstrap_token_file;  // the node's first credential
  std::string controller_ca;         // roots that authenticate the controller (PEM)
  std::string trust_domain = kDefaultTrustDomain;
  // This cluster's name in telemetry (source_cluster / destination_cluster, HBONE baggage).
  std::string cluster_name = kDefaultClusterName;
  std::string admin_address = "127.0.0.1";
  uint16_t admin_port = kDefaultAdminPort;  // 0: pick a free port (tests), logged at start
  // Capture: "bpf" loads the eBPF programs for this node; "none" runs without capture (inbound
  // and HBONE still work; outbound then only sees connections made to 15001 by hand).
  std::string capture = "bpf";
  std::string cgroup_path;  // pod cgroup subtree the capture attaches to (capture=bpf)
  std::string bpffs_dir;    // pin folder for the capture's links and maps (capture=bpf)
  std::vector<std::string> pod_cidrs = {"10.244.0.0/16", "fd00:244::/64"};
  std::vector<std::string> service_cidrs = {"10.96.0.0/16", "fd00:96::/112"};
  uint32_t socket_mark = 0;  // SO_MARK on the agent's own sockets (0: none)
  // Same-node sockmap splice of app <-> outbound-listener sockets (bpf/README.md, "Splice").
  // Off: an app socket in a sockmap can see EAGAIN from a blocking recv() on these kernels.
  bool bpf_splice = false;
  // Same-node direct path (agent/proxy/direct_paths.h, bpf/README.md): an L4-only same-node
  // pair the agent has admitted goes app to app in the kernel from its next connection on.
  bool same_node_direct = true;
  size_t max_buffer_bytes = kDefaultMaxBufferBytes;  // per direction per connection
  uint32_t max_streams_per_connection = kDefaultMaxStreamsPerConnection;
  // A new stream to a destination pod goes to the pooled connection (of its source pod and
  // worker) carrying the fewest streams; while that one carries any and fewer than this many are
  // open, a new one is opened, so that concurrent streams (bulk ones above all) use several TLS
  // connections, and the destination agent's workers, instead of sharing one (hbone_pool.h).
  // 0: as many as the agent has workers. Default 1, one connection per pair and worker: on a
  // 2-core node spreading bought no throughput and cost L7 saturation (bench/README.md).
  uint32_t pool_connections_per_peer = 1;
  uint32_t connect_timeout_ms = kDefaultConnectTimeoutMs;
  uint32_t pool_idle_timeout_ms = kDefaultPoolIdleTimeoutMs;
  uint32_t outlier_base_ejection_ms = 0;  // routed services: ejection base interval (0: library's)
  // Inbound HTTP ports (http_waiting.h): a request head must be complete this long after the
  // connection opened or the request's first byte came; at most this many connections of the
  // agent wait for one (a new one beyond it closes the oldest waiter of its worker, or is
  // refused); a keep-alive connection with no request in flight closes after the idle timeout.
  uint32_t http_header_timeout_ms = kDefaultHttpHeaderTimeoutMs;
  uint32_t max_http_awaiting_headers = kDefaultMaxHttpAwaitingHeaders;
  uint32_t http_idle_timeout_ms = kDefaultHttpIdleTimeoutMs;
  // Keep one spare descriptor per worker: out of descriptors, a listener accepts a pending
  // connection with it and closes it (a fast refusal) rather than leaving it queued (overload.h).
  bool fd_reserve = false;
  // Upgrades (agent/drain/handover.h): after SIGTERM the agent keeps its listeners until a
  // successor takes them over and serves its connections until they end, for at most this long.
  uint32_t drain_grace_ms = kDefaultDrainGraceMs;
  std::string handover_socket;  // "": <enroll socket>.handover
  // Stream hand-over (docs/upgrades.md): L4 HBONE streams are offered for resumption, and the
  // successor of a draining agent takes them over instead of the drain ending them. A stream
  // suspended (its peer agent restarting) waits this long for its resume before it is reset.
  bool stream_resume = true;
  uint32_t resume_window_ms = 10000;
  std::string log_level = "info";
  // Telemetry (agent/telemetry/telemetry.h): "" turns the metrics endpoint off; port 0 picks one
  // (tests).
  std::string metrics_address = kDefaultMetricsAddress;
  std::string readiness_address = "0.0.0.0";
  uint16_t readiness_port = kDefaultReadinessPort;  // 0: pick a free port (tests)
  bool access_log = true;
  double access_log_sample = 1.0;  // share of access-log lines written, 0..1
  // Spans to an OTLP/HTTP collector (agent/telemetry/telemetry_spans.h): "" = none.
  std::string trace_endpoint;
  double trace_sampling = kDefaultTraceSampling;  // share of new traces sampled, 0..1
  uint32_t trace_queue_spans = kDefaultTraceQueueSpans;
  uint32_t trace_batch_spans = kDefaultTraceBatchSpans;

  std::string stateFile() const;
  std::string handoverSocket() const;
  int workerCount() const;    // resolves 0 to the core count
  size_t poolSpread() const;  // pool_connections_per_peer, 0 resolved to workerCount()
  absl::Status validate() const;
};

// In agent/flags.cc (Abseil flags, target ferry_agent_flags); see `ferry-agent --help`.
absl::StatusOr<Config> parseFlags(const std::vector<std::string>& args);
std::string usage();

}  // namespace ferry::agent
