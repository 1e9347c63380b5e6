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

}  // namespace ferry::agent
