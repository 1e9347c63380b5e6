// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A Kubernetes resource type as the REST API addresses it. The client is generic over these;
// the constants below are the kinds Ferry's controller watches.

#include <string>

namespace ferry::kube {

struct Resource {
  std::string group;    // "" for the core group
  std::string version;  // "v1", "v1alpha1", ...
  std::string plural;   // path segment: "pods"
  std::string kind;     // "Pod"
  bool namespaced = true;

  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
  // "/api/v1" or "/apis/<group>/<version>"
  std::string prefix() const {
    return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  }
  // Collection path across all namespaces (ns empty) or within one.
  std::string collectionPath(const std::string& ns = "") const {
    if (ns.empty() || !namespaced) {
      return prefix() + "/" + plural;
    }
    return prefix() + "/namespaces/" + ns + "/" + plural;
  }
  std::string objectPath(const std::string& ns, const std::string& name) const {
    return collectionPath(ns) + "/" + name;
  }
};

inline const Resource kPods{"", "v1", "pods", "Pod", true};
inline const Resource kNamespaces{"", "v1", "namespaces", "Namespace", false};
inline const Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
inline const Resource kServices{"", "v1", "services", "Service", true};
inline const Resource kEndpointSlices{"discovery.k8s.io", "v1", "endpointslices", "EndpointSlice",
                                      true};
inline const Resource kAuthorizationPolicies{"security.ferry.dev", "v1alpha1",
                                             "authorizationpolicies", "AuthorizationPolicy", true};
inline const Resource kPeerAuthentications{"security.ferry.dev", "v1alpha1", "peerauthentications",
                                           "PeerAuthentication", true};
inline const Resource kRateLimitPolicies{"security.ferry.dev", "v1alpha1", "ratelimitpolicies",
                                         "RateLimitPolicy", true};
inline const Resource kHttpRoutes{"gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute",
                                  true};
inline const Resource kGrpcRoutes{"gateway.networking.k8s.io", "v1", "grpcroutes", "GRPCRoute",
                                  true};
inline const Resource kRequestAuthentications{
    "security.ferry.dev", "v1alpha1", "requestauthentications", "RequestAuthentication", true};
// Written by the controller itself: the leader-election Lease, the CA Secret and the ConfigMap
// that publishes the trust bundle.
inline const Resource kLeases{"coordination.k8s.io", "v1", "leases", "Lease", true};
inline const Resource kSecrets{"", "v1", "secrets", "Secret", true};
inline const Resource kConfigMaps{"", "v1", "configmaps", "ConfigMap", true};

// Every kind above, for code that handles all of them (the fake API server).
inline const Resource* const kKnownResources[] = {&kPods,
                                                  &kNamespaces,
                                                  &kServiceAccounts,
                                                  &kServices,
                                                  &kEndpointSlices,
                                                  &kAuthorizationPolicies,
                                                  &kPeerAuthentications,
                                                  &kHttpRoutes,
                                                  &kGrpcRoutes,
                                                  &kRateLimitPolicies,
                                                  &kRequestAuthentications,
                                                  &kLeases,
                                                  &kSecrets,
                                                  &kConfigMaps};

}  // namespace ferry::kube
