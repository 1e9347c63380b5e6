// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The mesh's view of the cluster as plain data. The controller builds it from Kubernetes (or a
// folder of manifests), scopes it per node and sends it to agents; agents, ferryctl and the
// policy engine read it. No behaviour lives here: engines that evaluate it are separate.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::model {

using Labels = std::map<std::string, std::string>;

// A matchLabels selector: every key of `selector` is in `labels` with the same value (an empty
// selector matches everything; callers decide what an absent or empty one means for them).
inline bool labelsMatch(const Labels& selector, const Labels& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) {
      return false;
    }
  }
  return true;
}

// Namespace/name of a Kubernetes object, printed as "namespace/name".
struct ObjectKey {
  std::string ns;
  std::string name;
  auto operator<=>(const ObjectKey&) const = default;
  std::string str() const { return ns + "/" + name; }
};

// A Kubernetes Namespace. mesh_enabled comes from the label ferry.dev/mesh=enabled.
struct Namespace {
  std::string name;
  Labels labels;
  bool mesh_enabled = false;
};

// A Kubernetes ServiceAccount: the identity a SPIFFE ID names.
struct ServiceAccount {
  ObjectKey key;
};

// A pod in the mesh (one that Ferry captures and gives an identity to).
struct Workload {
  std::string uid;
  ObjectKey key;
  std::string service_account = "default";
  std::string node;
  std::vector<std::string> ips;  // pod IPs, IPv4 and/or IPv6, textual
  Labels labels;
  std::string workload_name;  // owning Deployment/StatefulSet name, for metrics labels
  bool mesh_enabled = true;   // false when the pod or its namespace opts out
  std::string zone;           // topology.kubernetes.io/zone of its node, if known
};

// The only labels a pod-index entry keeps: what telemetry names a peer by (Istio's app and
// version, and the canonical-service labels it derives them from).
inline constexpr const char* kTelemetryLabelKeys[] = {
    "app",
    "version",
    "app.kubernetes.io/name",
    "app.kubernetes.io/version",
    "service.istio.io/canonical-name",
    "service.istio.io/canonical-revision",
};

// A pod as the pod index carries it: everything but the labels telemetry does not read.
inline Workload podIndexEntry(const Workload& w) {
  Workload entry = w;
  entry.labels.clear();
  for (const char* key : kTelemetryLabelKeys) {
    if (auto it = w.labels.find(key); it != w.labels.end()) {
      entry.labels.insert(*it);
    }
  }
  return entry;
}

struct ServicePort {
  std::string name;
  uint16_t port = 0;
  uint16_t target_port = 0;  // 0: same as port
  std::string target_port_name;
  std::string protocol = "TCP";
  std::string app_protocol;  // e.g. "http", "kubernetes.io/h2c", "grpc"
};

struct Service {
  ObjectKey key;
  std::vector<std::string> vips;  // ClusterIPs
  std::vector<ServicePort> ports;
  Labels selector;
  Labels annotations;  // metadata.annotations (ferry.dev/* load balancing and limits)
  std::string hostname() const { return key.name + "." + key.ns + ".svc.cluster.local"; }
};

struct Endpoint {
  std::string ip;
  std::string workload_uid;  // empty when the endpoint is not a mesh workload
  std::string node;
  std::string zone;
  bool ready = true;
};

// The union of a Service's EndpointSlices.
struct ServiceEndpoints {
  ObjectKey service;
  std::vector<Endpoint> endpoints;
  std::map<std::string, uint16_t> named_ports;  // EndpointSlice port name -> port
};

// security.ferry.dev/v1alpha1 AuthorizationPolicy, with Istio's field names and semantics.
enum class PolicyAction { kAllow, kDeny, kAudit };

// "ALLOW", "DENY" or "AUDIT", as AuthorizationPolicy spells the action.
inline std::string_view actionName(PolicyAction a) {
  switch (a) {
    case PolicyAction::kAllow:
      return "ALLOW";
    case PolicyAction::kDeny:
      return "DENY";
    case PolicyAction::kAudit:
      return "AUDIT";
  }
  return "?";
}

struct Source {
  std::vector<std::string> principals, not_principals;
  std::vector<std::string> namespaces, not_namespaces;
  std::vector<std::string> ip_blocks, not_ip_blocks;
  std::vector<std::string> remote_ip_blocks, not_remote_ip_blocks;
  std::vector<std::string> request_principals, not_request_principals;
  // Kubernetes service accounts of the peer certificate, "<namespace>/<name>" (exact).
  std::vector<std::string> service_accounts, not_service_accounts;
};

struct Operation {
  std::vector<std::string> hosts, not_hosts;
  std::vector<std::string> ports, not_ports;
  std::vector<std::string> methods, not_methods;
  std::vector<std::string> paths, not_paths;
};

struct Condition {
  std::string key;  // e.g. "request.headers[x-token]", "source.namespace", "destination.port"
  std::vector<std::string> values, not_values;
};

struct Rule {
  std::vector<Source> from;
  std::vector<Operation> to;
  std::vector<Condition> when;
};

struct AuthorizationPolicy {
  ObjectKey key;
  std::optional<Labels> selector;  // nullopt: every workload in the namespace
  PolicyAction action = PolicyAction::kAllow;
  std::vector<Rule> rules;
  bool root_namespace = false;  // set when key.ns is the mesh root namespace (mesh-wide)
  // Annotation istio.io/dry-run: "true": evaluated and reported (logged, counted) beside the
  // real decision, never enforced.
  bool dry_run = false;
  // Non-empty on a stand-in for a policy the controller could not admit (the reason): it keeps
  // the refused policy's key and selector and denies everything there until it is fixed, so a
  // refused policy never widens access (policy/engine.h, refusedStandIn).
  std::string refused;
};

// security.ferry.dev/v1alpha1 PeerAuthentication: mTLS mode for inbound traffic.
enum class MtlsMode { kUnset, kStrict, kPermissive, kDisable };

struct PeerAuthentication {
  ObjectKey key;
  std::optional<Labels> selector;
  MtlsMode mode = MtlsMode::kUnset;
  std::map<uint16_t, MtlsMode> port_modes;
};

// security.ferry.dev/v1alpha1 RateLimitPolicy, shaped after Linkerd's HTTPLocalRateLimitPolicy:
// token buckets enforced by the destination agent, per destination pod. On HTTP ports each
// request takes a token (over the limit: 429 with Retry-After); on TCP ports each new connection.
inline constexpr uint32_t kMaxRequestsPerSecond = 1'000'000;
struct RateLimit {
  uint32_t requests_per_second = 0;
  uint32_t burst = 0;  // bucket size; the decoder sets it to requests_per_second when unset
  bool operator==(const RateLimit&) const = default;
};
struct RateLimitOverride {
  RateLimit limit;                          // one bucket shared by every client listed
  std::vector<ObjectKey> service_accounts;  // clientRefs of kind ServiceAccount
  bool operator==(const RateLimitOverride&) const = default;
};
struct RateLimitPolicy {
  ObjectKey key;
  // Exactly one target: a Service of key.ns (its pods, on the target port of `service_port`, or
  // of every port when 0), or a workload selector (on `ports`, every port when empty).
  std::string target_service;
  uint16_t service_port = 0;
  std::optional<Labels> selector;
  std::vector<uint16_t> ports;
  std::optional<RateLimit> total;     // every client together
  std::optional<RateLimit> identity;  // each client identity its own bucket
  std::vector<RateLimitOverride> overrides;
  // Non-empty on a stand-in for a policy the controller could not admit (the reason): its
  // target, as far as it reads, is limited to zero until it is fixed (never widens access).
  std::string refused;
  bool operator==(const RateLimitPolicy&) const = default;
};

// security.ferry.dev/v1alpha1 RequestAuthentication: JWT rules (Istio's JWTRule) for the
// workloads it selects, verified by the destination agent on HTTP ports.
struct JwtHeader {
  std::string name;
  std::string prefix;  // stripped from the value, e.g. "Bearer "
  auto operator<=>(const JwtHeader&) const = default;
};
struct ClaimToHeader {
  std::string header;
  std::string claim;  // "name" or nested "outer.inner"
  auto operator<=>(const ClaimToHeader&) const = default;
};
struct JwtRule {
  std::string issuer;
  std::vector<std::string> audiences;  // empty: `aud` is not checked
  // The JWKS JSON: inline (`jwks`), or fetched by the controller from `jwks_uri` and sent with
  // the node state (agents never fetch).
  std::string jwks;
  std::string jwks_uri;
  // Set when jwks_uri has never been fetched successfully: this issuer's tokens are refused
  // (401) and missing tokens still pass, as Istio does with its placeholder JWKS.
  std::string jwks_error;
  std::vector<JwtHeader> from_headers;   // empty: `Authorization: Bearer <token>`
  std::vector<std::string> from_params;  // empty (with from_headers empty): `access_token`
  bool forward_original_token = false;
  std::string output_payload_to_header;
  std::vector<ClaimToHeader> output_claim_to_headers;
};
struct RequestAuthentication {
  ObjectKey key;
  std::optional<Labels> selector;
  std::vector<JwtRule> jwt_rules;
};

// gateway.networking.k8s.io/v1 HTTPRoute attached to a Service (GAMMA).
struct HttpHeaderMatch {
  enum class Type { kExact, kRegularExpression } type = Type::kExact;
  std::string name, value;
};
struct HttpQueryMatch {
  enum class Type { kExact, kRegularExpression } type = Type::kExact;
  std::string name, value;
};
struct HttpPathMatch {
  enum class Type { kExact, kPathPrefix, kRegularExpression } type = Type::kPathPrefix;
  std::string value = "/";
};
struct HttpRouteMatch {
  std::optional<HttpPathMatch> path;
  std::vector<HttpHeaderMatch> headers;
  std::vector<HttpQueryMatch> query_params;
  std::optional<std::string> method;
};
struct HttpHeaderModifier {
  std::vector<std::pair<std::string, std::string>> set, add;
  std::vector<std::string> remove;
};
// HTTPPathModifier of RequestRedirect and URLRewrite.
struct HttpPathModifier {
  enum class Type { kReplaceFullPath, kReplacePrefixMatch } type = Type::kReplaceFullPath;
  std::string value;
};
// HTTPURLRewriteFilter: empty hostname = Host unchanged.
struct HttpUrlRewrite {
  std::string hostname;
  std::optional<HttpPathModifier> path;
};
// HTTPRequestRedirectFilter: empty scheme/hostname and port 0 = derived from the request.
struct HttpRequestRedirect {
  std::string scheme, hostname;
  std::optional<HttpPathModifier> path;
  uint16_t port = 0;
  uint16_t status_code = 302;
};
// backendRefs[].filters: applied only when the request goes to that backend.
struct BackendFilters {
  std::optional<HttpHeaderModifier> request_header_modifier, response_header_modifier;
  std::optional<HttpUrlRewrite> rewrite;
  bool empty() const { return !request_header_modifier && !response_header_modifier && !rewrite; }
};
struct BackendRef {
  ObjectKey service;
  uint16_t port = 0;
  uint32_t weight = 1;
  BackendFilters filters;
};
struct HttpRetry {
  uint32_t attempts = 0;
  std::vector<uint32_t> codes;
  uint32_t backoff_ms = 25;
};
struct HttpRouteRule {
  std::vector<HttpRouteMatch> matches;
  std::vector<BackendRef> backends;
  std::optional<HttpHeaderModifier> request_header_modifier, response_header_modifier;
  std::optional<HttpRequestRedirect> redirect;  // answers; never with backends
  std::optional<HttpUrlRewrite> rewrite;        // never with redirect
  std::optional<uint32_t> request_timeout_ms, backend_request_timeout_ms;
  std::optional<HttpRetry> retry;
  std::optional<BackendRef> mirror;
  // RequestMirror percent (n/100) or fraction (n/d): the share of requests mirrored.
  uint32_t mirror_numerator = 100;
  uint32_t mirror_denominator = 100;
};
struct HttpRoute {
  ObjectKey key;
  std::vector<ObjectKey> parent_services;  // parentRefs of kind Service
  std::vector<uint16_t> parent_ports;      // parentRef.port, 0 = all
  std::vector<HttpRouteRule> rules;
  Labels annotations;  // metadata.annotations (fault.ferry.dev/* fault injection)
};

// Everything one agent needs, versioned. The controller sends a full snapshot, then deltas.
struct NodeSnapshot {
  uint64_t version = 0;
  std::string node;
  std::vector<Workload> workloads;  // local pods plus the remote pods that are endpoints
  // Every other pod of the cluster that has an address, in the mesh or not (mesh_enabled says
  // which), as podIndexEntry() cuts it: so a node knows each pod's wire protocol (HBONE or
  // plain TCP) and names any peer in telemetry, and refuses a pod address it does not know.
  // Sent only to nodes that run a mesh pod. About 200 bytes of JSON per pod.
  std::vector<Workload> pod_index;
  std::vector<Service> services;
  std::vector<ServiceEndpoints> endpoints;
  std::vector<AuthorizationPolicy> policies;
  std::vector<PeerAuthentication> peer_authentications;
  std::vector<RateLimitPolicy> rate_limits;
  std::vector<RequestAuthentication> request_authentications;
  std::vector<HttpRoute> routes;
  std::string trust_domain = "cluster.local";
  std::string trust_bundle_pem;  // every root currently trusted (more than one during rotation)
};

// spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>
inline std::string spiffeId(const std::string& trust_domain, const Workload& w) {
  return "spiffe://" + trust_domain + "/ns/" + w.key.ns + "/sa/" + w.service_account;
}

}  // namespace ferry::model
