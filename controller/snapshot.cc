// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Scoping the store to one node: what the agent there needs and nothing else.
//
// - Workloads: every pod scheduled on the node (mesh_enabled says whether Ferry captures it),
//   plus the remote mesh pods behind the services in the view (the agent needs their identity
//   to verify the peer it connects to).
// - Pod index: when the node runs at least one mesh pod, every other pod with an address (mesh
//   or not), cut by model::podIndexEntry to identity, node, addresses and telemetry labels, so
//   the agent sends any mesh pod over HBONE (Service or not), passes a non-mesh pod through,
//   and refuses a pod address it does not know.
// - Services, endpoints and routes: only when the node runs at least one mesh pod (otherwise
//   nothing there can call through the mesh); then every Service, since any local pod may call
//   any of them and the agent refuses a ClusterIP it does not know (a Service outside the mesh
//   resolves to its non-mesh pods, which the agent passes through), and the HTTPRoutes attached
//   to those services.
// - AuthorizationPolicies, PeerAuthentications and RequestAuthentications: those that select a
//   local mesh pod (same namespace or the root namespace, and the selector matches its labels);
//   a RequestAuthentication's jwksUri rules carry the keys the controller last fetched.
// - RateLimitPolicies: those whose target may be a local mesh pod (rateLimitTargetsAny).
#include <mutex>

#include "controller/store.h"

namespace ferry::controller {
namespace {

bool selects(const std::optional<model::Labels>& selector, const model::Labels& labels) {
  return !selector || model::labelsMatch(*selector, labels);
}

template <typename Policy>
bool selectsAny(const Policy& p, bool root, const std::vector<model::Workload>& local) {
  for (const auto& w : local) {
    if (w.mesh_enabled && (root || p.key.ns == w.key.ns) && selects(p.selector, w.labels)) {
      return true;
    }
  }
  return false;
}

// A RateLimitPolicy goes to a node running a mesh pod of its namespace: one with a selector only
// where it selects such a pod; one that targets a Service wherever its namespace has a mesh pod
// (the agent resolves the Service's selector and ports from the snapshot's Services).
bool rateLimitTargetsAny(const model::RateLimitPolicy& p,
                         const std::vector<model::Workload>& local) {
  if (p.target_service.empty()) {
    return selectsAny(p, /*root=*/false, local);
  }
  for (const auto& w : local) {
    if (w.mesh_enabled && w.key.ns == p.key.ns) {
      return true;
    }
  }
  return false;
}

}  // namespace

model::ServiceEndpoints StateStore::endpointsLocked(const model::Service& svc) const {
  auto slices = slices_by_service_.find(svc.key);
  if (slices != slices_by_service_.end()) {
    std::vector<const k8s::EndpointSlice*> list;
    for (const auto& key : slices->second) {
      auto it = objects_.find(k8s::ObjectRef{k8s::Kind::kEndpointSlice, key});
      if (it != objects_.end()) {
        list.push_back(&std::get<k8s::EndpointSlice>(it->second));
      }
    }
    model::ServiceEndpoints eps = k8s::mergeEndpointSlices(svc.key, list);
    for (auto& e : eps.endpoints) {
      if (e.workload_uid.empty()) {
        if (auto p = pod_by_ip_.find(e.ip); p != pod_by_ip_.end()) {
          auto pod = objects_.find(k8s::ObjectRef{k8s::Kind::kPod, p->second});
          e.workload_uid = std::get<model::Workload>(pod->second).uid;
        }
      }
    }
    return eps;
  }
  model::ServiceEndpoints eps;
  eps.service = svc.key;
  if (!options_.endpoints_from_selectors || svc.selector.empty()) {
    return eps;
  }
  // Standalone: act as the endpoints controller.
  const k8s::ObjectRef first{k8s::Kind::kPod, {svc.key.ns, ""}};
  for (auto it = objects_.lower_bound(first);
       it != objects_.end() && it->first.kind == k8s::Kind::kPod && it->first.key.ns == svc.key.ns;
       ++it) {
    const auto& w = std::get<model::Workload>(it->second);
    if (!selects(svc.selector, w.labels)) {
      continue;
    }
    for (const auto& ip : w.ips) {
      eps.endpoints.push_back(model::Endpoint{ip, w.uid, w.node, w.zone, true});
    }
  }
  return eps;
}

std::vector<model::Workload> StateStore::localWorkloadsLocked(const std::string& node) const {
  std::vector<model::Workload> local;
  if (auto pods = pods_by_node_.find(node); pods != pods_by_node_.end() && !node.empty()) {
    local.reserve(pods->second.size());
    for (const auto& key : pods->second) {
      auto it = objects_.find(k8s::ObjectRef{k8s::Kind::kPod, key});
      model::Workload w = std::get<model::Workload>(it->second);
      w.mesh_enabled = meshMemberLocked(w);
      local.push_back(std::move(w));
    }
  }
  return local;
}

bool StateStore::addPolicyLocked(const k8s::Object& object,
                                 const std::vector<model::Workload>& local,
                                 model::NodeSnapshot& snap) const {
  if (const auto* p = std::get_if<model::AuthorizationPolicy>(&object)) {
    if (selectsAny(*p, p->root_namespace, local)) {
      snap.policies.push_back(*p);
      return true;
    }
  } else if (const auto* p = std::get_if<model::PeerAuthentication>(&object)) {
    if (selectsAny(*p, p->key.ns == options_.root_namespace, local)) {
      snap.peer_authentications.push_back(*p);
      return true;
    }
  } else if (const auto* p = std::get_if<model::RateLimitPolicy>(&object)) {
    if (rateLimitTargetsAny(*p, local)) {
      snap.rate_limits.push_back(*p);
      return true;
    }
  } else if (const auto* p = std::get_if<model::RequestAuthentication>(&object)) {
    if (selectsAny(*p, p->key.ns == options_.root_namespace, local)) {
      snap.request_authentications.push_back(withJwksLocked(*p));
      return true;
    }
  }
  return false;
}

NodeViewChanges StateStore::changesSince(const std::string& node, uint64_t since) const {
  std::shared_lock lock(mu_);
  NodeViewChanges out;
  out.version = version_;
  if (since < rebuild_before_ || since > version_) {
    return out;  // rebuild
  }
  out.rebuild = false;
  std::set<k8s::ObjectRef> changed;
  for (auto it = policy_changes_.rbegin(); it != policy_changes_.rend() && it->first > since;
       ++it) {
    changed.insert(it->second);
  }
  if (changed.empty()) {
    return out;
  }
  const std::vector<model::Workload> local = localWorkloadsLocked(node);
  for (const k8s::ObjectRef& ref : changed) {
    auto it = objects_.find(ref);
    if (it != objects_.end() && addPolicyLocked(it->second, local, out.upserts)) {
      continue;
    }
    switch (ref.kind) {
      case k8s::Kind::kAuthorizationPolicy:
        out.gone.policies.push_back(ref.key);
        break;
      case k8s::Kind::kPeerAuthentication:
        out.gone.peer_authentications.push_back(ref.key);
        break;
      case k8s::Kind::kRateLimitPolicy:
        out.gone.rate_limits.push_back(ref.key);
        break;
      default:
        out.gone.request_authentications.push_back(ref.key);
        break;
    }
  }
  return out;
}

model::NodeSnapshot StateStore::snapshotFor(const std::string& node) const {
  std::shared_lock lock(mu_);
  model::NodeSnapshot snap;
  snap.version = version_;
  snap.node = node;
  snap.trust_domain = options_.trust_domain;
  snap.trust_bundle_pem = trust_bundle_pem_;
  snap.workloads = localWorkloadsLocked(node);
  std::set<model::ObjectKey> in_view;
  bool any_mesh = false;
  for (const auto& w : snap.workloads) {
    any_mesh = any_mesh || w.mesh_enabled;
    in_view.insert(w.key);
  }
  // Policy kinds sort after pods, services and slices (the bulk of the store).
  static_assert(k8s::Kind::kAuthorizationPolicy > k8s::Kind::kEndpointSlice &&
                k8s::Kind::kPeerAuthentication > k8s::Kind::kAuthorizationPolicy &&
                k8s::Kind::kRateLimitPolicy > k8s::Kind::kAuthorizationPolicy &&
                k8s::Kind::kRequestAuthentication > k8s::Kind::kAuthorizationPolicy);
  for (auto it = objects_.lower_bound(k8s::ObjectRef{k8s::Kind::kAuthorizationPolicy, {}});
       it != objects_.end(); ++it) {
    addPolicyLocked(it->second, snap.workloads, snap);
  }
  if (!any_mesh) {
    return snap;
  }
  std::set<model::ObjectKey> services;
  for (const auto& [ref, obj] : objects_) {
    if (ref.kind != k8s::Kind::kService) {
      continue;
    }
    const auto& svc = std::get<model::Service>(obj);
    services.insert(svc.key);
    snap.services.push_back(svc);
    model::ServiceEndpoints eps = endpointsLocked(svc);
    for (const auto& e : eps.endpoints) {
      auto uid = pod_by_uid_.find(e.workload_uid);
      if (uid == pod_by_uid_.end() || in_view.count(uid->second)) {
        continue;
      }
      auto pod = objects_.find(k8s::ObjectRef{k8s::Kind::kPod, uid->second});
      model::Workload w = std::get<model::Workload>(pod->second);
      w.mesh_enabled = meshMemberLocked(w);
      if (w.mesh_enabled) {
        in_view.insert(w.key);
        snap.workloads.push_back(std::move(w));
      }
    }
    snap.endpoints.push_back(std::move(eps));
  }
  for (auto it = objects_.lower_bound(k8s::ObjectRef{k8s::Kind::kPod, {}});
       it != objects_.end() && it->first.kind == k8s::Kind::kPod; ++it) {
    const auto& w = std::get<model::Workload>(it->second);
    if (in_view.count(it->first.key) || w.ips.empty()) {
      continue;
    }
    model::Workload entry = model::podIndexEntry(w);
    entry.mesh_enabled = meshMemberLocked(w);
    snap.pod_index.push_back(std::move(entry));
  }
  for (const auto& [ref, obj] : objects_) {
    if (ref.kind != k8s::Kind::kHttpRoute && ref.kind != k8s::Kind::kGrpcRoute) {
      continue;
    }
    const auto& route = std::get<model::HttpRoute>(obj);
    for (const auto& parent : route.parent_services) {
      if (services.count(parent)) {
        snap.routes.push_back(route);
        break;
      }
    }
  }
  return snap;
}

}  // namespace ferry::controller
