// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// JSON form of the shared model types, the payload of distribution resources. Field names are
// the C++ member names. Decoding fills absent fields with the model's defaults and ignores
// unknown ones, so controller and agent of adjacent versions understand each other as long as
// model.h changes stay additive.

#include <nlohmann/json.hpp>
#include <optional>

#include "model/model.h"

namespace ferry::model {

NLOHMANN_JSON_SERIALIZE_ENUM(PolicyAction, {{PolicyAction::kAllow, "ALLOW"},
                                            {PolicyAction::kDeny, "DENY"},
                                            {PolicyAction::kAudit, "AUDIT"}})
NLOHMANN_JSON_SERIALIZE_ENUM(MtlsMode, {{MtlsMode::kUnset, "UNSET"},
                                        {MtlsMode::kStrict, "STRICT"},
                                        {MtlsMode::kPermissive, "PERMISSIVE"},
                                        {MtlsMode::kDisable, "DISABLE"}})
NLOHMANN_JSON_SERIALIZE_ENUM(HttpHeaderMatch::Type,
                             {{HttpHeaderMatch::Type::kExact, "Exact"},
                              {HttpHeaderMatch::Type::kRegularExpression, "RegularExpression"}})
NLOHMANN_JSON_SERIALIZE_ENUM(HttpQueryMatch::Type,
                             {{HttpQueryMatch::Type::kExact, "Exact"},
                              {HttpQueryMatch::Type::kRegularExpression, "RegularExpression"}})
NLOHMANN_JSON_SERIALIZE_ENUM(HttpPathMatch::Type,
                             {{HttpPathMatch::Type::kPathPrefix, "PathPrefix"},
                              {HttpPathMatch::Type::kExact, "Exact"},
                              {HttpPathMatch::Type::kRegularExpression, "RegularExpression"}})

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ObjectKey, ns, name)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Workload, uid, key, service_account, node, ips,
                                                labels, workload_name, mesh_enabled, zone)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ServicePort, name, port, target_port,
                                                target_port_name, protocol, app_protocol)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Service, key, vips, ports, selector, annotations)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Endpoint, ip, workload_uid, node, zone, ready)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ServiceEndpoints, service, endpoints, named_ports)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Source, principals, not_principals, namespaces,
                                                not_namespaces, ip_blocks, not_ip_blocks,
                                                remote_ip_blocks, not_remote_ip_blocks,
                                                request_principals, not_request_principals,
                                                service_accounts, not_service_accounts)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Operation, hosts, not_hosts, ports, not_ports,
                                                methods, not_methods, paths, not_paths)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Condition, key, values, not_values)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Rule, from, to, when)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HttpHeaderMatch, type, name, value)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HttpQueryMatch, type, name, value)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HttpPathMatch, type, value)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HttpHeaderModifier, set, add, remove)
NLOHMANN_JSON_SERIALIZE_ENUM(HttpPathModifier::Type,
                             {{HttpPathModifier::Type::kReplaceFullPath, "ReplaceFullPath"},
                              {HttpPathModifier::Type::kReplacePrefixMatch, "ReplacePrefixMatch"}})
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HttpPathModifier, type, value)
void to_json(nlohmann::json& j, const HttpUrlRewrite& v);
void from_json(const nlohmann::json& j, HttpUrlRewrite& v);
void to_json(nlohmann::json& j, const HttpRequestRedirect& v);
void from_json(const nlohmann::json& j, HttpRequestRedirect& v);
void to_json(nlohmann::json& j, const BackendFilters& v);
void from_json(const nlohmann::json& j, BackendFilters& v);
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(BackendRef, service, port, weight, filters)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HttpRetry, attempts, codes, backoff_ms)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RateLimit, requests_per_second, burst)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RateLimitOverride, limit, service_accounts)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(JwtHeader, name, prefix)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ClaimToHeader, header, claim)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(JwtRule, issuer, audiences, jwks, jwks_uri,
                                                jwks_error, from_headers, from_params,
                                                forward_original_token, output_payload_to_header,
                                                output_claim_to_headers)

// Types with std::optional members (nlohmann 3.11.2 has no std::optional support; absent
// key <=> nullopt).
void to_json(nlohmann::json& j, const AuthorizationPolicy& v);
void from_json(const nlohmann::json& j, AuthorizationPolicy& v);
void to_json(nlohmann::json& j, const PeerAuthentication& v);
void from_json(const nlohmann::json& j, PeerAuthentication& v);
void to_json(nlohmann::json& j, const RateLimitPolicy& v);
void from_json(const nlohmann::json& j, RateLimitPolicy& v);
void to_json(nlohmann::json& j, const HttpRouteMatch& v);
void from_json(const nlohmann::json& j, HttpRouteMatch& v);
void to_json(nlohmann::json& j, const HttpRouteRule& v);
void from_json(const nlohmann::json& j, HttpRouteRule& v);
void to_json(nlohmann::json& j, const HttpRoute& v);
void to_json(nlohmann::json& j, const RequestAuthentication& v);
void from_json(const nlohmann::json& j, RequestAuthentication& v);
void from_json(const nlohmann::json& j, HttpRoute& v);

}  // namespace ferry::model
