// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/telemetry_peers.h"

namespace ferry::agent {
namespace {

std::string label(const model::Workload& w, const std::string& key) {
  auto it = w.labels.find(key);
  return it == w.labels.end() ? "" : it->second;
}

}  // namespace

std::string spiffeUri(const std::string& principal) {
  return principal.empty() ? "" : "spiffe://" + principal;
}

TelemetryPeer workloadPeer(const model::Workload* w, const std::string& principal,
                           const std::string& address) {
  TelemetryPeer p;
  p.principal = spiffeUri(principal);
  p.address = address;
  if (w != nullptr) {
    // Istio labels by owning workload (Deployment), not pod, which keeps series bounded.
    p.workload = w->workload_name.empty() ? w->key.name : w->workload_name;
    p.ns = w->key.ns;
    p.app = label(*w, "app");
    p.version = label(*w, "version");
  }
  return p;
}

TelemetryPeer localPodPeer(const WorkloadState& state, const LocalPod& pod,
                           const std::string& principal, const std::string& address) {
  if (const model::Workload* w = state.workloadByUid(pod.info.uid)) {
    return workloadPeer(w, principal, address);
  }
  TelemetryPeer p = workloadPeer(nullptr, principal, address);
  p.workload = pod.info.name;
  p.ns = pod.info.ns;
  return p;
}

PolicyOutcome policyOutcome(const Decision& d) {
  PolicyOutcome o;
  o.allowed = d.allowed;
  o.reason = d.reason;
  o.policy = d.policy;
  o.rule = d.rule;
  if (!d.policy.empty()) {
    o.action = d.allowed ? PolicyOutcome::Action::kAllow : PolicyOutcome::Action::kDeny;
  }
  return o;
}

std::string serviceHost(const model::Service* service) {
  return service == nullptr ? "" : service->hostname();
}

std::string serviceOfWorkload(const WorkloadState& state, const std::string& workload_uid) {
  const model::NodeSnapshot& snap = state.snapshot();
  for (const model::ServiceEndpoints& se : snap.endpoints) {
    for (const model::Endpoint& e : se.endpoints) {
      if (e.workload_uid == workload_uid) {
        return se.service.name + "." + se.service.ns + ".svc.cluster.local";
      }
    }
  }
  return "";
}

ConnectionInfo inboundReport(const WorkloadState& state, const LocalPod& pod,
                             const std::string& peer_principal, bool mtls,
                             const std::string& source_ip, const std::string& source_address,
                             const SocketAddress& destination, const Decision& d) {
  ConnectionInfo info;
  info.reporter = TelemetryReporter::kDestination;
  info.source = workloadPeer(state.workloadByIp(source_ip), peer_principal, source_address);
  const model::Workload* w = state.workloadByUid(pod.info.uid);
  PodIdentity id = identityOf(pod, w);
  info.destination =
      localPodPeer(state, pod, state.trustDomain() + "/ns/" + id.ns + "/sa/" + id.service_account,
                   destination.str());
  info.destination_service = serviceOfWorkload(state, pod.info.uid);
  info.mtls = mtls;
  info.policy = policyOutcome(d);
  return info;
}

ConnectionInfo outboundReport(const WorkloadState& state, const LocalPod& pod,
                              const std::string& source_principal, const std::string& source_ip,
                              const Destination& destination, bool mtls, const Decision* d) {
  ConnectionInfo info;
  info.reporter = TelemetryReporter::kSource;
  info.source = localPodPeer(state, pod, source_principal, source_ip);
  std::string address = destination.ip.find(':') == std::string::npos
                            ? destination.ip + ":" + std::to_string(destination.port)
                            : "[" + destination.ip + "]:" + std::to_string(destination.port);
  std::string dest_principal;
  if (destination.workload != nullptr) {
    dest_principal = state.trustDomain() + "/ns/" + destination.workload->key.ns + "/sa/" +
                     destination.workload->service_account;
  }
  info.destination = workloadPeer(destination.workload, dest_principal, address);
  info.destination_service =
      destination.service != nullptr
          ? serviceHost(destination.service)
          : (destination.workload != nullptr ? serviceOfWorkload(state, destination.workload->uid)
                                             : "");
  info.mtls = mtls;
  if (d != nullptr) {
    info.policy = policyOutcome(*d);
  }
  return info;
}

}  // namespace ferry::agent
