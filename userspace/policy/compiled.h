// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// AuthorizationPolicies compiled into matchers. Built once per policy update by compile();
// read concurrently, never modified afterwards.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/model.h"
#include "policy/attributes.h"
#include "policy/ip.h"
#include "policy/string_match.h"

namespace ferry::policy {

// A list of alternatives and a list of exclusions, Istio's `x` / `notX` pair: it holds when
// (the positive list is empty or any entry matches) and no negative entry matches.
template <typename T>
struct Field {
  std::vector<T> values, not_values;
  bool set() const { return !values.empty() || !not_values.empty(); }
};

struct CompiledSource {
  Field<StringMatcher> principals, namespaces, request_principals;
  Field<Cidr> ip_blocks, remote_ip_blocks;
};

struct CompiledOperation {
  Field<StringMatcher> hosts, methods, paths;
  Field<uint16_t> ports;
};

struct CompiledCondition {
  std::string key;  // as written, for explanations
  ConditionAttribute attribute;
  Field<StringMatcher> strings;  // header, namespace, principal, sni, request.auth.*
  Field<Cidr> cidrs;             // source.ip, remote.ip, destination.ip
  Field<uint16_t> ports;         // destination.port
};

struct CompiledRule {
  std::vector<CompiledSource> from;
  std::vector<CompiledOperation> to;
  std::vector<CompiledCondition> when;
  // Uses an attribute only an HTTP request has (hosts, methods, paths, request principals,
  // remote IPs, HTTP-level `when` keys).
  bool needs_http = false;
};

struct CompiledPolicy {
  model::ObjectKey key;
  model::PolicyAction action = model::PolicyAction::kAllow;
  std::optional<model::Labels> selector;
  bool root_namespace = false;
  std::vector<CompiledRule> rules;

  bool appliesTo(std::string_view ns, const model::Labels& labels) const;
};

// Compiles one policy; an error names the field ("rules[0].from[0].source.ipBlocks[1]: ...").
absl::StatusOr<CompiledPolicy> compile(const model::AuthorizationPolicy& policy);

}  // namespace ferry::policy
