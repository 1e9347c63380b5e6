// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The attribute vocabulary of AuthorizationPolicy `when` conditions (Istio's "Authorization
// Policy Conditions"), and value checks shared by the decoder and the engine's compiler so that
// what the controller admits is exactly what the agent can evaluate.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::policy {

enum class AttributeKind {
  kRequestHeader,     // request.headers[<name>]            (HTTP)
  kSourceIp,          // source.ip                          (L4)
  kRemoteIp,          // remote.ip                          (HTTP: X-Forwarded-For aware in Istio)
  kSourceNamespace,   // source.namespace                   (L4, from the peer's SPIFFE ID)
  kSourcePrincipal,   // source.principal                   (L4, the peer's SPIFFE ID)
  kRequestPrincipal,  // request.auth.principal            (HTTP, JWT "iss/sub")
  kRequestAudiences,  // request.auth.audiences            (HTTP, JWT `aud`)
  kRequestPresenter,  // request.auth.presenter            (HTTP, JWT `azp`)
  kRequestClaim,      // request.auth.claims[<name>]...    (HTTP, JWT claim; nested [a][b])
  kDestinationIp,     // destination.ip                     (L4)
  kDestinationPort,   // destination.port                   (L4)
  kConnectionSni,     // connection.sni                     (treated as HTTP-level, as Istio)
};

struct ConditionAttribute {
  AttributeKind kind;
  std::string header;  // lower-cased header name for kRequestHeader
  // kRequestClaim: the claim's path, names joined with "][" as written inside the outer
  // brackets ("groups", "realm_access][roles"); the form RequestAuth::claims uses.
  std::string claim;
};

absl::StatusOr<ConditionAttribute> parseConditionKey(std::string_view key);
// True when an L4-only evaluation (no HTTP request) can decide this attribute. Mirrors the set
// istiod allows in ztunnel policies.
bool isL4Attribute(AttributeKind kind);
// Checks one of `values`/`notValues` for the given attribute: CIDRs for IPs, 1..65535 for
// ports, Istio's wildcard syntax for the rest.
absl::Status checkConditionValue(const ConditionAttribute& attribute, std::string_view value);

// A port number written as a string (AuthorizationPolicy ports are strings): 1..65535.
absl::StatusOr<uint16_t> parsePort(std::string_view text);

// An HTTP method token (RFC 9110 tchar), or a wildcard pattern of them.
absl::Status checkMethod(std::string_view method);
// A path value: must start with '/' unless it is a wildcard pattern; Istio's {*} templates are
// not supported and refused rather than matched literally.
absl::Status checkPath(std::string_view path);

}  // namespace ferry::policy
