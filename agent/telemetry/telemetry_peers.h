// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Builds telemetry records (agent/telemetry/telemetry.h) from what the proxy paths already hold:
// the workload state, enrolled pods, policy decisions. Kept apart from the proxy code so each path
// reports with one line.

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "agent/io/sockets.h"
#include "agent/pods/local_pods.h"
#include "agent/state/policy_state.h"
#include "agent/state/workload_state.h"
#include "agent/telemetry/telemetry.h"
#include "hbone/baggage.h"

namespace ferry::agent {

// `principal` in the agent's "<td>/ns/<ns>/sa/<sa>" form (empty: none); `w` may be null.
TelemetryPeer workloadPeer(const model::Workload* w, const std::string& principal,
                           const std::string& address);
// Istio's canonical service of a workload: label service.istio.io/canonical-name, else
// app.kubernetes.io/name, else app, else the workload's name; and its canonical revision:
// service.istio.io/canonical-revision, else app.kubernetes.io/version, else version, else
// "latest" (istio.io/istio pkg/kube/labels CanonicalService).
std::pair<std::string, std::string> canonicalService(const model::Workload& w);
// A local pod, by its workload record when the state has one.
TelemetryPeer localPodPeer(const WorkloadState& state, const LocalPod& pod,
                           const std::string& principal, const std::string& address);
PolicyOutcome policyOutcome(const Decision& d);

// The metadata a source pod sends with its HBONE CONNECT (hbone/baggage.h).
hbone::Baggage sourceBaggage(const WorkloadState& state, const LocalPod& pod,
                             const PodIdentity& identity, const std::string& cluster_name);
// Names the source of `info` (a destination-side report) after baggage the caller checked
// against the peer certificate (hbone::believeBaggage); the principal and address stay.
void adoptBaggage(ConnectionInfo& info, const hbone::Baggage& b);
// "spiffe://" + principal, or "" for an empty one.
std::string spiffeUri(const std::string& principal);
// The service's FQDN, or "" when the connection was to a pod address.
std::string serviceHost(const model::Service* service);
// The FQDN of a service whose endpoints include the workload, or "" (inbound, where the VIP the
// client dialled is not known: the same answer the source side gives for a single service).
// With `port`, a service that sends to that port on the workload is preferred, so a pod behind
// several Services is reported under the one its traffic came through.
std::string serviceOfWorkload(const WorkloadState& state, const std::string& workload_uid,
                              uint16_t port = 0);

// Who opened a connection to a local pod, as its (the destination's) agent saw them.
struct InboundSource {
  const std::string& principal;  // "<td>/ns/<ns>/sa/<sa>" the peer proved; empty for plaintext
  bool mtls = false;
  const std::string& ip;
  const std::string& address;  // reported when the state knows no pod at `ip`
};
// The local pod that opened a connection, as its (the source's) agent reports it.
struct OutboundSource {
  const LocalPod& pod;
  const std::string& principal;  // the identity the agent gives the pod
  const std::string& ip;
};

// Reports for each proxy path. `d` null: no policy was evaluated (passthrough).
// inboundReport names the source by the node view (the state's pod at `source.ip`) only when
// that pod has the identity `source.principal` proves; otherwise only the certificate's
// namespace.
ConnectionInfo inboundReport(const WorkloadState& state, const LocalPod& pod,
                             const InboundSource& source, const SocketAddress& destination,
                             const Decision& d);
ConnectionInfo outboundReport(const WorkloadState& state, const OutboundSource& source,
                              const Destination& destination, bool mtls, const Decision* d);

}  // namespace ferry::agent
