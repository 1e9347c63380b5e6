// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Ferry's own metrics (ferry_*), read at scrape time from what the agent already keeps: worker
// Stats, the eBPF maps, enrolled pods' certificates and the applied configuration. Every label
// value comes from a fixed list or from configuration (identities of local pods), so series
// stay bounded whatever the traffic.
#include <unistd.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/agent.h"

namespace ferry::agent {
namespace {

using metrics::Sample;

Sample counter(std::string name, std::string help, double value,
               std::vector<std::pair<std::string, std::string>> labels = {}) {
  return {.name = std::move(name),
          .help = std::move(help),
          .counter = true,
          .labels = std::move(labels),
          .value = value};
}

Sample gauge(std::string name, std::string help, double value,
             std::vector<std::pair<std::string, std::string>> labels = {}) {
  Sample s = counter(std::move(name), std::move(help), value, std::move(labels));
  s.counter = false;
  return s;
}

// Stats counter -> (metric family, label value). Families group what an operator sums.
struct StatMapping {
  const char* stat;
  const char* family;
  const char* label;
};

constexpr StatMapping kStatMetrics[] = {
    {"outbound_accepted", "ferry_connections_total", "outbound"},
    {"inbound_plain_accepted", "ferry_connections_total", "inbound_plain"},
    {"inbound_hbone_streams", "ferry_connections_total", "inbound_hbone"},
    {"outbound_passthrough", "ferry_outbound_routes_total", "passthrough"},
    {"outbound_same_node", "ferry_outbound_routes_total", "same_node"},
    {"same_node_direct", "ferry_outbound_routes_total", "same_node_direct"},
    {"outbound_hbone", "ferry_outbound_routes_total", "hbone"},
    {"routed_upstream_streams", "ferry_routed_upstreams_total", "hbone_stream"},
    {"routed_upstream_pipes", "ferry_routed_upstreams_total", "local_pipe"},
    {"routed_upstream_sockets", "ferry_routed_upstreams_total", "socketpair"},
    {"outbound_no_original_dst", "ferry_errors_total", "no_original_destination"},
    {"outbound_no_endpoint", "ferry_errors_total", "no_endpoint"},
    {"outbound_unknown_destination", "ferry_errors_total", "unknown_destination"},
    {"outbound_not_enrolled", "ferry_errors_total", "destination_not_enrolled"},
    {"outbound_failed", "ferry_errors_total", "upstream_failed"},
    {"inbound_plain_refused_strict", "ferry_errors_total", "plaintext_refused_strict"},
    {"inbound_direct_raced", "ferry_connections_total", "direct_raced"},
    {"inbound_hbone_bad_authority", "ferry_errors_total", "bad_authority"},
    {"inbound_app_connect_failed", "ferry_errors_total", "app_connect_failed"},
    {"tls_handshake_failures", "ferry_errors_total", "tls_handshake_failed"},
    {"tls_peer_rejected", "ferry_errors_total", "tls_peer_rejected"},
    {"policy_denied", "ferry_errors_total", "policy_denied"},
    {"policy_dry_run_allowed", "ferry_policy_dry_run_total", "allow"},
    {"policy_dry_run_denied", "ferry_policy_dry_run_total", "deny"},
    {"tls_handshakes_client", "ferry_tls_handshakes_total", "client"},
    {"tls_handshakes_server", "ferry_tls_handshakes_total", "server"},
    {"baggage_rejected", "ferry_baggage_rejected_total", nullptr},
    {"pool_connections_opened", "ferry_pool_connections_opened_total", nullptr},
    {"pool_streams_reused", "ferry_pool_streams_reused_total", nullptr},
    {"streams_handed_over", "ferry_stream_resumption_total", "handed_over"},
    {"streams_taken_over", "ferry_stream_resumption_total", "taken_over"},
    {"streams_suspended", "ferry_stream_resumption_total", "suspended"},
    {"streams_resumed", "ferry_stream_resumption_total", "resumed"},
    {"streams_resume_failed", "ferry_stream_resumption_total", "failed"},
    {"streams_resume_expired", "ferry_stream_resumption_total", "expired"},
    {"bytes_sent_upstream", "ferry_proxied_bytes_total", "upstream"},
    {"bytes_sent_downstream", "ferry_proxied_bytes_total", "downstream"},
    {"accept_overload_emfile", "ferry_accept_overload_total", "emfile"},
    {"accept_overload_enfile", "ferry_accept_overload_total", "enfile"},
    {"accept_overload_enobufs", "ferry_accept_overload_total", "enobufs"},
    {"accept_overload_enomem", "ferry_accept_overload_total", "enomem"},
    {"accept_shed", "ferry_accept_shed_total", nullptr},
    {"http_header_timeouts", "ferry_http_header_timeouts_total", nullptr},
    {"http_idle_timeouts", "ferry_http_idle_timeouts_total", nullptr},
    {"http_headers_evicted", "ferry_http_awaiting_headers_shed_total", "evicted_oldest"},
    {"http_headers_refused", "ferry_http_awaiting_headers_shed_total", "refused"},
};

const char* labelNameOf(const std::string& family) {
  if (family == "ferry_errors_total") {
    return "reason";
  }
  if (family == "ferry_tls_handshakes_total") {
    return "side";
  }
  if (family == "ferry_proxied_bytes_total") {
    return "direction";
  }
  if (family == "ferry_outbound_routes_total") {
    return "route";
  }
  if (family == "ferry_policy_dry_run_total") {
    return "outcome";
  }
  if (family == "ferry_accept_overload_total") {
    return "cause";
  }
  if (family == "ferry_http_awaiting_headers_shed_total") {
    return "action";
  }
  if (family == "ferry_stream_resumption_total") {
    return "event";
  }
  return "listener";
}

}  // namespace

void Agent::addMetricSources() {
  // Sources run on the exporter's thread: each holds metrics_mu_ and stops once the agent
  // drains, so none reads workers or pods being torn down.
  auto guarded = [this](metrics::SampleSource source) {
    return [this, source = std::move(source)] {
      std::lock_guard lock(metrics_mu_);
      return tearing_down_.load() ? std::vector<Sample>{} : source();
    };
  };
  // Which agent drains: this one (before a successor takes the endpoint over), or the one before
  // it (reported by it over the hand-over socket).
  telemetry_->addSource(guarded([this] {
    std::vector<Sample> out;
    out.push_back(gauge("ferry_agent_draining",
                        "1 while this agent drains (after SIGTERM), 0 while it serves",
                        draining_.load() ? 1 : 0, {{"pid", std::to_string(::getpid())}}));
    if (predecessor_ && predecessor_->alive()) {
      out.push_back(gauge("ferry_agent_predecessor_draining_connections",
                          "Connections the previous agent of this node still serves",
                          static_cast<double>(predecessor_->connections()),
                          {{"pid", std::to_string(predecessor_->pid())}}));
    }
    if (int64_t ms = ready_after_ms_.load(); ms >= 0) {
      out.push_back(gauge("ferry_agent_takeover_ready_seconds",
                          "From this agent's start to accepting on listeners it took over",
                          static_cast<double>(ms) / 1000.0));
    }
    return out;
  }));
  telemetry_->addSource(guarded([this] {
    std::vector<Sample> out;
    std::map<std::string, int64_t> s = stats();
    for (const StatMapping& m : kStatMetrics) {
      std::vector<std::pair<std::string, std::string>> labels;
      if (m.label != nullptr) {
        labels.emplace_back(labelNameOf(m.family), m.label);
      }
      out.push_back(counter(m.family, "Agent data-path events (see agent/stats.h)",
                            static_cast<double>(s[m.stat]), std::move(labels)));
    }
    out.push_back(gauge("ferry_connections_active", "Proxied connections in flight",
                        static_cast<double>(s["connections_active"])));
    out.push_back(gauge("ferry_resumable_streams",
                        "HBONE streams this agent can hand over or resume (docs/upgrades.md)",
                        static_cast<double>(s["resumable_streams"])));
    out.push_back(gauge("ferry_resume_ledger_bytes",
                        "Memory held for retransmission by the resumable streams",
                        static_cast<double>(s["resume_ledger_bytes"])));
    out.push_back(gauge("ferry_http_awaiting_headers",
                        "Inbound HTTP connections waiting for a complete request head",
                        static_cast<double>(s["http_awaiting_headers"])));
    out.push_back(gauge("ferry_enrolled_pods", "Pods enrolled on this node",
                        static_cast<double>(registry_ ? registry_->size() : 0)));
    return out;
  }));
  // One series pair per RateLimitPolicy ever applied here (bounded by configuration).
  telemetry_->addSource(guarded([this] {
    std::vector<Sample> out;
    for (const RateLimitCount& c : rate_limits_->counts()) {
      for (const auto& [kind, value] :
           {std::pair{"request", c.requests}, std::pair{"connection", c.connections}}) {
        out.push_back(counter("ferry_rate_limited_total",
                              "Requests (429) and TCP connections refused by a RateLimitPolicy",
                              static_cast<double>(value), {{"policy", c.policy}, {"kind", kind}}));
      }
    }
    out.push_back(gauge("ferry_rate_limits_failing_closed",
                        "Refused RateLimitPolicies in force as limit-to-zero stand-ins",
                        static_cast<double>(rate_limits_->failingClosed().size())));
    return out;
  }));
  telemetry_->addSource(guarded([this] {
    std::vector<Sample> out;
    for (const auto& [name, value] : parts_.capture->kernelCounters()) {
      out.push_back(counter("ferry_bpf_events_total",
                            "Counters of the eBPF programs, read from their per-CPU map",
                            static_cast<double>(value), {{"event", name}}));
    }
    for (const auto& [name, value] : parts_.capture->kernelGauges()) {
      out.push_back(
          gauge("ferry_bpf_" + name, "Entries in the eBPF maps", static_cast<double>(value)));
    }
    out.push_back(gauge("ferry_bpf_attached", "1 when the eBPF capture is attached",
                        parts_.capture->attached() ? 1 : 0));
    return out;
  }));
  telemetry_->addSource(guarded([this] { return routeSamples(*routing_); }));
  telemetry_->addSource(guarded([this] {
    std::vector<Sample> out;
    auto state = workloads_.current();
    out.push_back(gauge("ferry_config_version", "Version of the applied configuration snapshot",
                        static_cast<double>(state->snapshot().version)));
    out.push_back(gauge("ferry_policies_failing_closed",
                        "Refused AuthorizationPolicies in force as deny-all stand-ins until fixed",
                        static_cast<double>(state->policies().failingClosed().size())));
    int64_t applied_ms = config_applied_unix_ms_.load(std::memory_order_relaxed);
    if (applied_ms != 0) {
      out.push_back(gauge("ferry_config_age_seconds",
                          "Seconds since the configuration was last applied",
                          absl::ToDoubleSeconds(absl::Now() - absl::FromUnixMillis(applied_ms))));
    }
    // One series per identity of an enrolled pod: bounded by the pods on this node.
    std::map<std::string, double> expiry;
    for (const auto& [uid, pod] : pods_.current()->by_uid) {
      PodIdentity id = identityOf(*pod, state->workloadByUid(uid));
      auto ctx = parts_.certs->contextFor(id.ns, id.service_account);
      if (ctx.ok()) {
        expiry[(*ctx)->identity().uri()] =
            absl::ToDoubleSeconds((*ctx)->notAfter() - absl::UnixEpoch());
      }
    }
    for (const auto& [identity, seconds] : expiry) {
      out.push_back(gauge("ferry_certificate_expiration_timestamp_seconds",
                          "When the workload certificate of an identity expires (Unix time)",
                          seconds, {{"identity", identity}}));
    }
    if (std::optional<bool> up = parts_.state->connected()) {
      out.push_back(gauge("ferry_controlplane_connected",
                          "1 while the agent's stream from ferry-controller is up (0: it serves "
                          "its last configuration)",
                          *up ? 1 : 0));
    }
    out.push_back(gauge("ferry_ready", "1 when the agent is ready (see /healthz/ready)",
                        readiness().ready ? 1 : 0));
    return out;
  }));
}

}  // namespace ferry::agent
