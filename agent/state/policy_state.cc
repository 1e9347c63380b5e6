// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/state/policy_state.h"

#include <algorithm>

#include "log/log.h"

namespace ferry::agent {
namespace {

bool selects(const std::optional<model::Labels>& selector, const model::Workload& w) {
  return !selector || model::labelsMatch(*selector, w.labels);
}

constexpr const char* kRootNamespace = "ferry-system";

}  // namespace

PolicyState::PolicyState(const model::NodeSnapshot& snapshot)
    : snapshot_(policy::PolicySnapshot::build(snapshot.policies, snapshot.version)) {
  for (const model::Workload& w : snapshot.workloads) {
    if (w.node == snapshot.node && !w.uid.empty()) {
      by_uid_.emplace(w.uid, snapshot_->forWorkload(w));
    }
  }
  failing_closed_ = snapshot_->refused();
  if (snapshot.request_authentications.empty()) {
    return;
  }
  // Each JWKS is parsed once per state, whichever workloads use it.
  request_authentications_ = snapshot.request_authentications;
  jwt::JwksCache keys;
  for (const model::Workload& w : snapshot.workloads) {
    if (w.node != snapshot.node || w.uid.empty()) {
      continue;
    }
    std::vector<model::JwtRule> rules = jwt::rulesFor(request_authentications_, w, kRootNamespace);
    if (rules.empty()) {
      continue;
    }
    auto authn = std::make_shared<const jwt::Authenticator>(std::move(rules), &keys);
    for (const auto& e : authn->keyErrors()) {
      jwt_key_errors_.push_back(w.key.str() + ": " + e);
    }
    authn_by_uid_.emplace(w.uid, std::move(authn));
  }
}

std::shared_ptr<const jwt::Authenticator> PolicyState::authenticator(
    const model::Workload& destination) const {
  if (auto it = authn_by_uid_.find(destination.uid); it != authn_by_uid_.end()) {
    return it->second;
  }
  if (request_authentications_.empty()) {
    return nullptr;
  }
  // A pod the state does not know yet: its rules as far as its namespace and labels are known.
  auto rules = jwt::rulesFor(request_authentications_, destination, kRootNamespace);
  return rules.empty() ? nullptr : std::make_shared<const jwt::Authenticator>(std::move(rules));
}

policy::Decision PolicyState::evaluate(const model::Workload& destination,
                                       const policy::Request& request) const {
  auto it = by_uid_.find(destination.uid);
  if (it != by_uid_.end()) {
    return it->second.evaluate(request);
  }
  // A pod the state does not know yet (enrolled before the controller told us): its namespace
  // and labels as far as they are known.
  return snapshot_->forWorkload(destination).evaluate(request);
}

policy::Request connectionRequest(const ConnectionAttributes& attrs, std::string& principal) {
  principal = attrs.principal.empty() ? std::string() : "spiffe://" + attrs.principal;
  policy::Request r;
  r.source_principal = principal;
  r.source_ip = net::IpAddress::parse(attrs.source_ip);
  r.destination_ip = net::IpAddress::parse(attrs.destination_ip);
  r.destination_port = attrs.destination_port;
  r.http_port = attrs.http;
  return r;
}

void recordDryRun(const policy::Decision& d, const std::string& what, Stats* stats) {
  if (!d.dry_run) {
    return;
  }
  if (stats != nullptr) {
    stats->inc(d.dry_run->allowed ? stats->policy_dry_run_allowed : stats->policy_dry_run_denied);
  }
  if (d.dry_run->allowed != d.allowed) {
    LOG_INFO(what, ": dry-run policies would ", d.dry_run->allowed ? "allow" : "deny",
             " (not enforced): ", d.str());
  }
}

Decision PolicyState::authorize(const model::Workload& destination,
                                const ConnectionAttributes& attrs, Stats* stats) const {
  std::string principal;
  policy::Request request = connectionRequest(attrs, principal);
  policy::Decision d = evaluate(destination, request);
  if (d.dry_run) {
    recordDryRun(d,
                 (attrs.principal.empty() ? attrs.source_ip : attrs.principal) + " -> " +
                     destination.key.str() + " port " + std::to_string(attrs.destination_port),
                 stats);
  }
  Decision out;
  out.allowed = d.allowed;
  out.reason = d.str();
  if (d.rule.policy != nullptr) {
    out.policy = d.rule.policy->key.str();
    out.rule = d.rule.rule;
  }
  return out;
}

void logFailingClosed(const PolicyState& before, const PolicyState& after) {
  const auto& was = before.failingClosed();
  const auto& now = after.failingClosed();
  for (const std::string& p : now) {
    if (std::find(was.begin(), was.end(), p) == was.end()) {
      LOG_WARN("AuthorizationPolicy ", p,
               ": refused; the workloads it selects deny everything until it is fixed");
    }
  }
  for (const std::string& p : was) {
    if (std::find(now.begin(), now.end(), p) == now.end()) {
      LOG_INFO("AuthorizationPolicy ", p, ": no longer failing closed");
    }
  }
  const auto& keys_was = before.jwtKeyErrors();
  for (const std::string& e : after.jwtKeyErrors()) {
    if (std::find(keys_was.begin(), keys_was.end(), e) == keys_was.end()) {
      LOG_WARN("RequestAuthentication for ", e, ": no usable keys; its tokens are refused (401)");
    }
  }
}

model::MtlsMode mtlsModeFor(const model::NodeSnapshot& snapshot, const model::Workload& workload,
                            uint16_t port, const std::string& root_namespace) {
  const model::PeerAuthentication* by_workload = nullptr;
  const model::PeerAuthentication* by_namespace = nullptr;
  const model::PeerAuthentication* by_root = nullptr;
  for (const model::PeerAuthentication& pa : snapshot.peer_authentications) {
    if (pa.key.ns == workload.key.ns && pa.selector && selects(pa.selector, workload)) {
      by_workload = &pa;
    } else if (pa.key.ns == workload.key.ns && !pa.selector) {
      by_namespace = &pa;
    } else if (pa.key.ns == root_namespace && !pa.selector) {
      by_root = &pa;
    }
  }
  for (const model::PeerAuthentication* pa : {by_workload, by_namespace, by_root}) {
    if (pa == nullptr) {
      continue;
    }
    auto pm = pa->port_modes.find(port);
    if (pm != pa->port_modes.end() && pm->second != model::MtlsMode::kUnset) {
      return pm->second;
    }
    if (pa->mode != model::MtlsMode::kUnset) {
      return pa->mode;
    }
  }
  return model::MtlsMode::kPermissive;
}

}  // namespace ferry::agent
