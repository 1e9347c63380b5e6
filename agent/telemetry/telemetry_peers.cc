// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/telemetry/telemetry_peers.h"

#include <algorithm>
#include <initializer_list>
#include <string_view>
#include <tuple>

namespace ferry::agent {
namespace {

// The label keys telemetry reads, made once: model::Labels is looked up by std::string, and a
// key built from a literal at each lookup was an allocation (most keys are longer than a
// string holds inline), several per connection and per routed request.
struct LabelKeys {
  std::string app = "app";
  std::string version = "version";
  std::string canonical_name = "service.istio.io/canonical-name";
  std::string app_name = "app.kubernetes.io/name";
  std::string canonical_revision = "service.istio.io/canonical-revision";
  std::string app_version = "app.kubernetes.io/version";
};

const LabelKeys& labelKeys() {
  static const LabelKeys* const keys = new LabelKeys();
  return *keys;
}

std::string_view label(const model::Workload& w, const std::string& key) {
  auto it = w.labels.find(key);
  return it == w.labels.end() ? std::string_view() : std::string_view(it->second);
}

std::string_view firstLabel(const model::Workload& w,
                            std::initializer_list<const std::string*> keys) {
  for (const std::string* key : keys) {
    if (std::string_view v = label(w, *key); !v.empty()) {
      return v;
    }
  }
  return {};
}

std::string workloadName(const model::Workload& w) {
  return w.workload_name.empty() ? w.key.name : w.workload_name;
}

// "<td>/ns/<ns>/sa/<sa>" -> "<ns>", or "" when `principal` is not in that form.
std::string namespaceOf(const std::string& principal) {
  size_t at = principal.find("/ns/");
  size_t end = at == std::string::npos ? at : principal.find("/sa/", at + 4);
  return end == std::string::npos ? "" : principal.substr(at + 4, end - at - 4);
}

}  // namespace

std::pair<std::string, std::string> canonicalService(const model::Workload& w) {
  const LabelKeys& k = labelKeys();
  std::string_view name = firstLabel(w, {&k.canonical_name, &k.app_name, &k.app});
  std::string_view revision = firstLabel(w, {&k.canonical_revision, &k.app_version, &k.version});
  return {name.empty() ? workloadName(w) : std::string(name),
          std::string(revision.empty() ? "latest" : revision)};
}

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
    p.workload = workloadName(*w);
    p.ns = w->key.ns;
    p.app = label(*w, labelKeys().app);
    p.version = label(*w, labelKeys().version);
    std::tie(p.canonical_service, p.canonical_revision) = canonicalService(*w);
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

hbone::Baggage sourceBaggage(const WorkloadState& state, const LocalPod& pod,
                             const PodIdentity& identity, const std::string& cluster_name) {
  hbone::Baggage b;
  b.cluster = cluster_name;
  b.ns = identity.ns;
  b.service_account = identity.service_account;
  if (const model::Workload* w = state.workloadByUid(pod.info.uid)) {
    b.workload = workloadName(*w);
    b.workload_kind =
        w->workload_name.empty() || w->workload_name == w->key.name ? "pod" : "deployment";
    std::tie(b.service, b.revision) = canonicalService(*w);
    b.app = label(*w, labelKeys().app);
    b.version = label(*w, labelKeys().version);
  } else {
    b.workload = pod.info.name;
    b.workload_kind = "pod";
  }
  return b;
}

void adoptBaggage(ConnectionInfo& info, const hbone::Baggage& b) {
  TelemetryPeer& p = info.source;
  p.workload = b.workload;
  p.ns = b.ns;
  p.app = b.app;
  p.version = b.version;
  p.canonical_service = b.service;
  p.canonical_revision = b.revision;
  p.cluster = b.cluster;
}

PolicyOutcome policyOutcome(const Decision& d) {
  PolicyOutcome o;
  o.allowed = d.allowed;
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
                             const InboundSource& source, const SocketAddress& destination,
                             const Decision& d) {
  ConnectionInfo info;
  info.reporter = TelemetryReporter::kDestination;
  const model::Workload* from = state.workloadByIp(source.ip);
  if (from != nullptr && !source.principal.empty() &&
      source.principal !=
          state.trustDomain() + "/ns/" + from->key.ns + "/sa/" + from->service_account) {
    from = nullptr;  // the address's pod is not who the certificate says connected
  }
  info.source = workloadPeer(from, source.principal, source.address);
  if (from == nullptr) {
    info.source.ns = namespaceOf(source.principal);
  }
  const model::Workload* w = state.workloadByUid(pod.info.uid);
  PodIdentity id = identityOf(pod, w);
  info.destination =
      localPodPeer(state, pod, state.trustDomain() + "/ns/" + id.ns + "/sa/" + id.service_account,
                   destination.str());
  info.destination_service = serviceOfWorkload(state, pod.info.uid, destination.port());
  info.mtls = source.mtls;
  info.policy = policyOutcome(d);
  return info;
}

ConnectionInfo outboundReport(const WorkloadState& state, const OutboundSource& source,
                              const Destination& destination, bool mtls, const Decision* d) {
  ConnectionInfo info;
  info.reporter = TelemetryReporter::kSource;
  info.source = localPodPeer(state, source.pod, source.principal, source.ip);
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
