// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The authorization engine: Istio's AuthorizationPolicy semantics over a compiled, immutable
// snapshot (Envoy's rbac engine, ztunnel's rbac.rs).
//
// Decision for a workload, given the policies that select it (same namespace, or the root
// namespace; selector labels all present):
//   1. any matching rule of a DENY policy denies;
//   2. otherwise, with no ALLOW policy for the workload, the request is allowed;
//   3. otherwise a matching ALLOW rule allows;
//   4. otherwise it is denied.
// AUDIT policies never change the decision; their matching rules are listed in it.
// A rule matches when each of from (any source), to (any operation) and when (every condition)
// does; an absent attribute (a plaintext peer's principal, a missing header) never matches a
// value and always passes a `not` value, as in Istio.
//
// L4 decisions (Request::http == null, a port that is not HTTP) follow what istiod programs into
// ztunnel: an ALLOW rule that needs any HTTP attribute is dropped (it allows nothing), while in a
// DENY or AUDIT rule the HTTP-only parts are ignored and the rest is still enforced, so such a
// DENY applies more broadly (a DENY on paths alone denies every connection). HTTP attributes:
// hosts, methods, paths (and not forms), requestPrincipals, remoteIpBlocks, and `when` keys other
// than source.ip, source.namespace, source.principal, destination.ip, destination.port.
//
// Evaluation is stateless and lock-free: a PolicySnapshot never changes after build(), and the
// agent swaps whole snapshots through a PolicyStore.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "policy/compiled.h"
#include "policy/request.h"

namespace ferry::policy {

class PolicySnapshot;

// A policy rule a decision points at. `policy` points into the snapshot the decision came from
// and is valid while that snapshot is (WorkloadPolicies keeps it alive).
struct RuleRef {
  const CompiledPolicy* policy = nullptr;
  int rule = -1;
  std::string str() const;  // "demo/deny-admin rule 0"
};

struct Decision {
  enum class Reason {
    kDenyMatched,     // a DENY rule matched
    kNoAllowPolicy,   // no ALLOW policy applies: allowed
    kAllowMatched,    // an ALLOW rule matched
    kNoAllowMatched,  // ALLOW policies apply, none matched
  };
  bool allowed = false;
  Reason reason = Reason::kNoAllowMatched;
  RuleRef rule;                 // the DENY or ALLOW rule that decided (kDenyMatched/kAllowMatched)
  std::vector<RuleRef> audits;  // first matching rule of each matching AUDIT policy
  // "denied by demo/deny-admin rule 0", "allowed: no ALLOW policy applies", ...
  std::string str() const;
};

// For `ferryctl check`: every policy that applies, every rule, and why each did or did not
// match ("from[0].source.principals: spiffe://cluster.local/ns/x/sa/y is not one of ...").
struct Explanation {
  struct RuleResult {
    int rule = 0;
    bool matched = false;
    bool skipped_at_l4 = false;  // an ALLOW rule needing HTTP, in an L4 decision
    std::string why;             // first clause that failed, or what matched
  };
  struct PolicyResult {
    model::ObjectKey policy;
    model::PolicyAction action;
    std::vector<RuleResult> rules;
  };
  Decision decision;
  std::vector<PolicyResult> policies;
  std::string str() const;  // multi-line, human-readable
};

// The policies that apply to one workload. Cheap to evaluate repeatedly; the agent keeps one per
// local workload and rebuilds it when a new snapshot arrives.
class WorkloadPolicies {
 public:
  WorkloadPolicies() = default;
  Decision evaluate(const Request& request) const;
  Explanation explain(const Request& request) const;
  size_t size() const { return deny_.size() + allow_.size() + audit_.size(); }

 private:
  friend class PolicySnapshot;

  // The rules of one action in evaluation order (policy by policy), indexed by exact source
  // principal: a rule whose every source names only exact principals can match only requests
  // from one of them, so a decision visits the unkeyed rules and the request principal's rules
  // (merged back into evaluation order) instead of every rule.
  struct RuleIndex {
    struct Entry {
      const CompiledPolicy* policy;
      int rule;
    };
    std::vector<Entry> rules;
    std::vector<uint32_t> unkeyed;
    std::vector<std::pair<std::string, std::vector<uint32_t>>> by_principal;  // sorted by key

    static RuleIndex build(const std::vector<const CompiledPolicy*>& policies);
    // Calls visit(entry) for each candidate in evaluation order until it returns true.
    template <typename Visit>
    void forCandidates(std::string_view principal, Visit visit) const;
  };

  // Every rule, no index: what explain() reports, and the reference the index must agree with.
  Decision evaluateLinear(const Request& request) const;

  std::shared_ptr<const PolicySnapshot> snapshot_;
  std::vector<const CompiledPolicy*> deny_, allow_, audit_;
  RuleIndex deny_index_, allow_index_, audit_index_;
};

class PolicySnapshot : public std::enable_shared_from_this<PolicySnapshot> {
 public:
  // Compiles every policy. A policy that does not compile (the decoder should have refused it)
  // fails closed: a DENY policy denies everything for the workloads it selects, an ALLOW policy
  // allows nothing (it still counts as an ALLOW policy), an AUDIT policy is dropped; each such
  // policy is listed in errors().
  static std::shared_ptr<const PolicySnapshot> build(
      const std::vector<model::AuthorizationPolicy>& policies, uint64_t version = 0);

  WorkloadPolicies forWorkload(std::string_view ns, const model::Labels& labels) const;
  WorkloadPolicies forWorkload(const model::Workload& w) const {
    return forWorkload(w.key.ns, w.labels);
  }
  // Convenience for one-off decisions; the agent should cache forWorkload() instead.
  Decision evaluate(const model::Workload& w, const Request& request) const {
    return forWorkload(w).evaluate(request);
  }

  uint64_t version() const { return version_; }
  size_t size() const { return policies_.size(); }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  PolicySnapshot() = default;
  uint64_t version_ = 0;
  std::vector<CompiledPolicy> policies_;  // sorted by namespace/name: decisions are stable
  std::vector<std::string> errors_;
};

// The current snapshot, swapped atomically on update; readers never block writers or each
// other for longer than the reference-count update.
class PolicyStore {
 public:
  PolicyStore() : current_(PolicySnapshot::build({})) {}
  void update(std::shared_ptr<const PolicySnapshot> snapshot) {
    current_.store(std::move(snapshot), std::memory_order_release);
  }
  std::shared_ptr<const PolicySnapshot> current() const {
    return current_.load(std::memory_order_acquire);
  }

 private:
  std::atomic<std::shared_ptr<const PolicySnapshot>> current_;
};

}  // namespace ferry::policy
