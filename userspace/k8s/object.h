// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Kubernetes objects Ferry reads, decoded into the plain types of model/model.h and keyed by
// kind + namespace/name so a controller can keep them in one map per source.

#include <compare>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "model/model.h"

namespace ferry::k8s {

enum class Kind {
  kNamespace,
  kServiceAccount,
  kPod,
  kService,
  kEndpointSlice,
  kAuthorizationPolicy,
  kPeerAuthentication,
  kHttpRoute,
  kRateLimitPolicy,
  kRequestAuthentication,
  kGrpcRoute,  // decoded as the model::HttpRoute it means (decode_grpc_route.cc)
};

// Every kind, in the enum's order (what a source that feeds all of them lists or watches).
inline constexpr Kind kAllKinds[] = {Kind::kNamespace,
                                     Kind::kServiceAccount,
                                     Kind::kPod,
                                     Kind::kService,
                                     Kind::kEndpointSlice,
                                     Kind::kAuthorizationPolicy,
                                     Kind::kPeerAuthentication,
                                     Kind::kHttpRoute,
                                     Kind::kRateLimitPolicy,
                                     Kind::kRequestAuthentication,
                                     Kind::kGrpcRoute};

// "Namespace", "Pod", "HTTPRoute", ... as Kubernetes spells the kind.
std::string_view kindName(Kind kind);

// One discovery.k8s.io/v1 EndpointSlice. A Service's endpoints are the union of its slices:
// see mergeEndpointSlices.
struct EndpointSlice {
  model::ObjectKey key;
  std::string service;       // label kubernetes.io/service-name (same namespace)
  std::string address_type;  // IPv4, IPv6 or FQDN
  // One entry per address. workload_uid is targetRef.uid when the target is a Pod.
  std::vector<model::Endpoint> endpoints;
  std::map<std::string, uint16_t> named_ports;  // "" for the unnamed port
};

// All slices of one service, merged; slices of other services are ignored. An address that
// appears in several slices is kept once, ready if any slice says ready.
model::ServiceEndpoints mergeEndpointSlices(const model::ObjectKey& service,
                                            const std::vector<const EndpointSlice*>& slices);

struct ObjectRef {
  Kind kind = Kind::kPod;
  model::ObjectKey key;  // key.ns is empty for cluster-scoped kinds (Namespace)
  auto operator<=>(const ObjectRef&) const = default;
  // "AuthorizationPolicy demo/deny-admin", "Namespace demo".
  std::string str() const;
};

// Pods decode to model::Workload. Workload::mesh_enabled reflects the pod alone (opt-out label
// ferry.dev/mesh=disabled, or hostNetwork); the namespace's membership label is the
// controller's to combine.
using Object =
    std::variant<model::Namespace, model::ServiceAccount, model::Workload, model::Service,
                 EndpointSlice, model::AuthorizationPolicy, model::PeerAuthentication,
                 model::HttpRoute, model::RateLimitPolicy, model::RequestAuthentication>;

struct Decoded {
  ObjectRef ref;
  std::string resource_version;  // metadata.resourceVersion, empty in manifests
  Object object;
};

struct DecodeOptions {
  // AuthorizationPolicies and PeerAuthentications here apply mesh-wide (Istio's root
  // namespace, istio-system there).
  std::string root_namespace = "ferry-system";
  // Namespace for namespaced objects whose manifest gives none, as `kubectl apply` would.
  std::string default_namespace = "default";
};

// Labels Ferry reads.
inline constexpr std::string_view kMeshLabel = "ferry.dev/mesh";
inline constexpr std::string_view kMeshEnabled = "enabled";
inline constexpr std::string_view kMeshDisabled = "disabled";

}  // namespace ferry::k8s
