// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Real-shaped Kubernetes objects (as the API server stores them) for tests and benchmarks.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ferry::testing {

using nlohmann::json;

inline json podJson(const std::string& ns, const std::string& name, const std::string& node,
                    const std::string& ip, const json& labels = json::object(),
                    const std::string& service_account = "default") {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
          {"spec",
           {{"nodeName", node},
            {"serviceAccountName", service_account},
            {"containers", {{{"name", "app"}, {"image", "app:1"}}}}}},
          {"status", {{"phase", "Running"}, {"podIP", ip}, {"podIPs", {{{"ip", ip}}}}}}};
}

inline json namespaceJson(const std::string& name, const json& labels = json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "Namespace"},
          {"metadata", {{"name", name}, {"labels", labels}}}};
}

inline json meshNamespaceJson(const std::string& name) {
  return namespaceJson(name, {{"ferry.dev/mesh", "enabled"}});
}

inline json serviceAccountJson(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "ServiceAccount"},
          {"metadata", {{"name", name}, {"namespace", ns}}}};
}

inline json serviceJson(const std::string& ns, const std::string& name, const std::string& vip,
                        const json& selector, int port = 80, int target_port = 8080) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", {{"name", name}, {"namespace", ns}}},
      {"spec",
       {{"type", "ClusterIP"},
        {"clusterIP", vip},
        {"clusterIPs", {vip}},
        {"selector", selector},
        {"ports",
         {{{"name", "http"}, {"protocol", "TCP"}, {"port", port}, {"targetPort", target_port}}}}}}};
}

struct SliceEndpoint {
  std::string ip, node, pod, pod_uid;
};

inline json endpointSliceJson(const std::string& ns, const std::string& name,
                              const std::string& service,
                              const std::vector<SliceEndpoint>& endpoints, int port = 8080) {
  json eps = json::array();
  for (const auto& e : endpoints) {
    json ep = {{"addresses", {e.ip}}, {"conditions", {{"ready", true}}}, {"nodeName", e.node}};
    if (!e.pod.empty()) {
      ep["targetRef"] = {{"kind", "Pod"}, {"namespace", ns}, {"name", e.pod}, {"uid", e.pod_uid}};
    }
    eps.push_back(ep);
  }
  return {
      {"apiVersion", "discovery.k8s.io/v1"},
      {"kind", "EndpointSlice"},
      {"metadata",
       {{"name", name}, {"namespace", ns}, {"labels", {{"kubernetes.io/service-name", service}}}}},
      {"addressType", "IPv4"},
      {"endpoints", eps},
      {"ports", {{{"name", "http"}, {"port", port}, {"protocol", "TCP"}}}}};
}

inline json authorizationPolicyJson(const std::string& ns, const std::string& name,
                                    const json& match_labels, const std::string& action = "ALLOW",
                                    const std::string& principal = "cluster.local/ns/x/sa/y") {
  json spec = {{"action", action},
               {"rules",
                {{{"from", {{{"source", {{"principals", {principal}}}}}}},
                  {"to", {{{"operation", {{"methods", {"GET"}}}}}}}}}}};
  if (!match_labels.is_null()) {
    spec["selector"] = {{"matchLabels", match_labels}};
  }
  return {{"apiVersion", "security.ferry.dev/v1alpha1"},
          {"kind", "AuthorizationPolicy"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", spec}};
}

inline json peerAuthenticationJson(const std::string& ns, const std::string& name,
                                   const json& match_labels, const std::string& mode = "STRICT") {
  json spec = {{"mtls", {{"mode", mode}}}};
  if (!match_labels.is_null()) {
    spec["selector"] = {{"matchLabels", match_labels}};
  }
  return {{"apiVersion", "security.ferry.dev/v1alpha1"},
          {"kind", "PeerAuthentication"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", spec}};
}

inline json rateLimitPolicyJson(const std::string& ns, const std::string& name, const json& target,
                                int total) {
  json spec = target;
  spec["total"] = {{"requestsPerSecond", total}};
  return {{"apiVersion", "security.ferry.dev/v1alpha1"},
          {"kind", "RateLimitPolicy"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", spec}};
}

inline json httpRouteJson(const std::string& ns, const std::string& name,
                          const std::string& parent_service, const std::string& backend,
                          int weight = 1) {
  return {
      {"apiVersion", "gateway.networking.k8s.io/v1"},
      {"kind", "HTTPRoute"},
      {"metadata", {{"name", name}, {"namespace", ns}}},
      {"spec",
       {{"parentRefs", {{{"group", ""}, {"kind", "Service"}, {"name", parent_service}}}},
        {"rules", {{{"backendRefs", {{{"name", backend}, {"port", 80}, {"weight", weight}}}}}}}}}};
}

}  // namespace ferry::testing
