// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/telemetry_peers.h"

#include <algorithm>

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

namespace {

// Whether one of `service`'s ports sends to `port` on its endpoints.
bool targetsPort(const model::Service& service, const model::ServiceEndpoints& se, uint16_t port) {
  for (const model::ServicePort& p : service.ports) {
    uint16_t target = p.target_port != 0 ? p.target_port : p.port;
    if (!p.target_port_name.empty()) {
      auto it = se.named_ports.find(p.name);
      target = it == se.named_ports.end() ? 0 : it->second;
    }
    if (target == port) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string serviceOfWorkload(const WorkloadState& state, const std::string& workload_uid,
                              uint16_t port) {
  const model::NodeSnapshot& snap = state.snapshot();
  std::string first;
  for (const model::ServiceEndpoints& se : snap.endpoints) {
    bool member =
        std::any_of(se.endpoints.begin(), se.endpoints.end(),
                    [&](const model::Endpoint& e) { return e.workload_uid == workload_uid; });
    if (!member) {
      continue;
    }
    std::string host = se.service.name + "." + se.service.ns + ".svc.cluster.local";
    if (port == 0) {
      return host;
    }
    if (first.empty()) {
      first = host;
    }
    for (const model::Service& s : snap.services) {
      if (s.key == se.service && targetsPort(s, se, port)) {
        return host;
      }
    }
  }
  return first;
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
  info.destination_service = serviceOfWorkload(state, pod.info.uid, destination.port());
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
