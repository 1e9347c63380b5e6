// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal: one decoder per kind. Each gets the object's root (path "") and its decoded
// metadata, and throws DecodeError with a field path on bad input.

#include <optional>
#include <string>
#include <vector>

#include "k8s/field.h"
#include "k8s/object.h"
#include "model/model.h"

namespace ferry::k8s::internal {

struct OwnerReference {
  std::string kind, name;
  bool controller = false;
};

struct Meta {
  model::ObjectKey key;
  model::Labels labels, annotations;
  std::string uid, resource_version;
  std::vector<OwnerReference> owners;
};

Meta decodeMeta(const Field& metadata, bool namespaced, const DecodeOptions& options);

// Shared value checks.
void checkDnsLabel(const Field& f, const std::string& value);      // RFC 1123 label
void checkDnsSubdomain(const Field& f, const std::string& value);  // RFC 1123 subdomain
void checkIp(const Field& f, const std::string& value);
uint16_t decodePort(const Field& f);  // integer 1..65535
// selector: {matchLabels: {...}} as Istio's WorkloadSelector; nullopt when absent.
std::optional<model::Labels> decodeWorkloadSelector(const Field& f);

model::Namespace decodeNamespace(const Field& root, const Meta& meta);
model::ServiceAccount decodeServiceAccount(const Field& root, const Meta& meta);
model::Workload decodePod(const Field& root, const Meta& meta);
model::Service decodeService(const Field& root, const Meta& meta);
EndpointSlice decodeEndpointSlice(const Field& root, const Meta& meta);
model::AuthorizationPolicy decodeAuthorizationPolicy(const Field& root, const Meta& meta,
                                                     const DecodeOptions& options);
// The fail-closed stand-in for an AuthorizationPolicy the decoder refused with `reason`, with
// selector, action and dry-run read as far as they can be (policy::refusedStandIn).
std::optional<model::AuthorizationPolicy> refusedAuthorizationPolicy(const YAML::Node& node,
                                                                     const model::ObjectKey& key,
                                                                     const DecodeOptions& options,
                                                                     std::string reason);
model::PeerAuthentication decodePeerAuthentication(const Field& root, const Meta& meta);
model::HttpRoute decodeHttpRoute(const Field& root, const Meta& meta);
// GRPCRoute as the route it means for the same route table: method matches become :path
// matches (decode_grpc_route.cc); its key's name is "grpc:<name>" (an HTTPRoute may share
// the name).
model::HttpRoute decodeGrpcRoute(const Field& root, const Meta& meta);
// The parts both route kinds share (decode_route.cc): an HTTPRoute-shaped spec whose matches
// `decode_match` reads; one header match; an RE2 pattern check.
using RouteMatchDecoder = model::HttpRouteMatch (*)(const Field&);
model::HttpRoute decodeRouteWith(const Field& root, const Meta& meta,
                                 RouteMatchDecoder decode_match);
model::HttpHeaderMatch decodeHeaderMatch(const Field& h);
void checkRegex(const Field& f, const std::string& pattern);
model::RateLimitPolicy decodeRateLimitPolicy(const Field& root, const Meta& meta);
// The fail-closed stand-in for a RateLimitPolicy the decoder refused with `reason`: its target as
// far as it reads (else every workload of the namespace) limited to zero.
std::optional<model::RateLimitPolicy> refusedRateLimitPolicy(const YAML::Node& node,
                                                             const model::ObjectKey& key,
                                                             std::string reason);
model::RequestAuthentication decodeRequestAuthentication(const Field& root, const Meta& meta);

}  // namespace ferry::k8s::internal
