// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/routed_exchange.h"

#include "agent/proxy/outbound.h"
#include "agent/telemetry/http_telemetry.h"
#include "agent/telemetry/telemetry.h"
#include "agent/telemetry/telemetry_peers.h"

namespace ferry::agent {

void reportExchange(const WorkloadStateHolder& workloads, Telemetry& telemetry,
                    const RoutedClient& client, RoutedExchange& x,
                    const std::optional<routing::EndpointRef>& endpoint) {
  if (!x.active || x.reported) {
    return;
  }
  x.reported = true;
  // Refused before routing (400, 501): no state was taken for the request yet.
  auto held = x.state != nullptr ? x.state : workloads.current();
  const WorkloadState& state = *held;
  Destination dest;
  model::ObjectKey service = client.service;
  if (x.forwarding && endpoint) {
    dest = endpointDestination(state, *endpoint);
    service = x.route.backend_service;
  } else {
    dest.ip = client.vip;  // answered here: nothing behind the VIP was picked
    dest.port = client.port;
  }
  const LocalPod& pod = *client.pod;
  PodIdentity identity = identityOf(pod, state.workloadByUid(pod.info.uid));
  HttpRequestInfo r;
  r.connection = outboundReport(
      state,
      {.pod = pod, .principal = principalOf(state.trustDomain(), identity), .ip = client.source_ip},
      dest, dest.workload != nullptr && dest.workload->mesh_enabled, nullptr);
  r.connection.destination_service = model::Service{.key = service}.hostname();
  r.policy_evaluated = false;  // the destination authorizes
  r.response_flags = x.flags;
  r.method = x.method;
  r.path = x.path;
  r.authority = x.route.authority;
  r.response_code = x.answered;
  r.protocol = x.protocol;
  r.grpc_status = x.grpc_status;
  r.request_bytes = x.request_bytes;
  r.response_bytes = x.response_bytes;
  r.duration = absl::FromChrono(std::chrono::steady_clock::now() - x.started);
  r.upstream_cluster = x.route.upstream_cluster;
  if (!x.route.trace && telemetry.spanExporter() != nullptr) {
    x.route.trace = forwardedTrace("", telemetry.sampler());  // refused before routing
  }
  if (x.route.trace) {
    auto incoming = trace::parseTraceparent(x.route.incoming_traceparent);
    setTrace(r, incoming.ok() ? &*incoming : nullptr, *x.route.trace);
  }
  telemetry.recordRequest(r);
}

}  // namespace ferry::agent
