// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// AuthorizationPolicies compiled into matchers. Built once per policy update by compile();
// read concurrently, never modified afterwards.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/model.h"
#include "net/ip.h"
#include "policy/attributes.h"
#include "policy/string_match.h"

namespace ferry::policy {

// A list of alternatives and a list of exclusions, Istio's `x` / `notX` pair: it holds when
// (the positive list is empty or any entry matches) and no negative entry matches.
template <typename T>
struct Field {
  std::vector<T> values, not_values;
  bool set() const { return !values.empty() || !not_values.empty(); }
};

// `serviceAccounts` entry: the peer's SPIFFE ID names exactly this namespace and account.
struct ServiceAccountMatcher {
  std::string ns, name;
  std::string pattern;  // "ns/name", for explanations
};

struct CompiledSource {
  Field<StringMatcher> principals, namespaces, request_principals;
  Field<ServiceAccountMatcher> service_accounts;
  Field<net::Cidr> ip_blocks, remote_ip_blocks;
  // Written with no field at all (`source: {}`): matches nothing, as in ztunnel, where an empty
  // match in a clause is skipped (src/rbac.rs, test rbac_empty_policy).
  bool empty = false;
};

struct CompiledOperation {
  Field<StringMatcher> hosts, methods, paths;
  Field<uint16_t> ports;
};

struct CompiledCondition {
  std::string key;  // as written, for explanations
  ConditionAttribute attribute;
  Field<StringMatcher> strings;  // header, namespace, principal, sni, request.auth.*
  Field<net::Cidr> cidrs;        // source.ip, remote.ip, destination.ip
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
  bool dry_run = false;
  std::string refused;  // a stand-in for a refused policy: why (model::AuthorizationPolicy)
  std::vector<CompiledRule> rules;

  bool appliesTo(std::string_view ns, const model::Labels& labels) const;
};

// Compiles one policy; an error names the field ("rules[0].from[0].source.ipBlocks[1]: ...").
absl::StatusOr<CompiledPolicy> compile(const model::AuthorizationPolicy& policy);

// A `serviceAccounts` value: "<namespace>/<name>", both DNS labels, no wildcard (ztunnel matches
// namespace and name exactly).
absl::Status checkServiceAccount(std::string_view value);

// What takes the place of a policy that cannot be applied (refused by the decoder or failing to
// compile): same key and selector, DENY with one empty rule (denies everything it selects), and
// `refused` set to the reason. Nothing for an AUDIT or dry-run policy, which never change a
// decision. Istio goes the same way (more restrictive, never wider): istiod drops the ALLOW
// rules it cannot express for ztunnel, leaving an ALLOW policy that matches nothing.
std::optional<model::AuthorizationPolicy> refusedStandIn(const model::AuthorizationPolicy& policy,
                                                         std::string reason);

}  // namespace ferry::policy
