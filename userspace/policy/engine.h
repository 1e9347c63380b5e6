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
// Connection-level decisions (Request::http == null) on a TCP port follow Istio's documented
// rules for TCP traffic (what istiod programs into ztunnel): an ALLOW rule that needs any HTTP
// attribute never matches, while in a DENY or AUDIT rule the HTTP-only parts are dropped and the
// rest (ports, principals, namespaces, serviceAccounts, ipBlocks, L4 `when` keys) still applies,
// so such a DENY applies more broadly (a DENY on paths alone denies every connection; one on
// paths and port 9000 denies port 9000). On an HTTP port (Request::http_port) the connection is
// admitted when some request could be allowed (an ALLOW rule's HTTP parts count as matching, a
// DENY rule's as not matching) and every request is decided again with its HTTP attributes.
// HTTP attributes: hosts, methods, paths (and not forms), requestPrincipals, remoteIpBlocks,
// and `when` keys other than source.ip, source.namespace, source.principal, destination.ip,
// destination.port.
//
// Dry-run policies (istio.io/dry-run) never change the decision: the decision carries, beside
// it, the one that would be made with them enforced too (Decision::dry_run).
//
// Tunnels (HttpRequest::tunnel: CONNECT, an upgrade other than WebSocket) are allowed only by an
// ALLOW rule with an operation naming their method exactly; with no ALLOW policy they are denied
// (Reason::kTunnelNotNamed), as Envoy refuses upgrade types it is not configured for.
//
// Evaluation is stateless and lock-free: a PolicySnapshot never changes after build(), and the
// agent swaps whole snapshots through a PolicyStore.

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
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
    kDenyMatched,     // a DENY rule matched (or a refused policy's stand-in: rule.policy->refused)
    kNoAllowPolicy,   // no ALLOW policy applies: allowed
    kAllowMatched,    // an ALLOW rule matched
    kNoAllowMatched,  // ALLOW policies apply, none matched
    kTunnelNotNamed,  // a tunnel (HttpRequest::tunnel) no ALLOW rule names the method of
  };
  // The decision dry-run policies would make, enforced together with the others.
  struct DryRun {
    bool allowed = false;
    Reason reason = Reason::kNoAllowMatched;
    RuleRef rule;
  };
  bool allowed = false;
  Reason reason = Reason::kNoAllowMatched;
  RuleRef rule;                 // the DENY or ALLOW rule that decided (kDenyMatched/kAllowMatched)
  std::vector<RuleRef> audits;  // first matching rule of each matching AUDIT policy
  std::optional<DryRun> dry_run;  // set when a dry-run policy applies to the workload
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
    bool dry_run = false;  // listed, never enforced
    std::string refused;   // a stand-in for a refused policy: why
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
  size_t size() const {
    return enforced_.deny.size() + enforced_.allow.size() + enforced_.audit.size();
  }
  bool hasDryRun() const { return shadow_ != nullptr; }

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

    // Fills `keyed` (exact principal -> positions in `rules`) for this action.
    static RuleIndex build(const std::vector<const CompiledPolicy*>& policies,
                           std::map<std::string, std::vector<uint32_t>>& keyed);
    // Calls visit(entry) for each candidate in evaluation order until it returns true.
    template <typename Visit>
    void forCandidates(const std::vector<uint32_t>* keyed, Visit visit) const;
  };
  enum Slot { kDenySlot, kAllowSlot, kAuditSlot };
  // A principal's keyed rules of each action, found with one hash lookup per decision.
  using Keyed = std::array<std::vector<uint32_t>, 3>;

  // The policies of each action and their indexes.
  struct RuleSet {
    std::vector<const CompiledPolicy*> deny, allow, audit;
    RuleIndex deny_index, allow_index, audit_index;
    absl::flat_hash_map<std::string, Keyed> by_principal;
    void buildIndexes();
    Decision evaluate(const Request& request) const;
    // Every rule, no index: what explain() reports, and the reference the index must agree with.
    Decision evaluateLinear(const Request& request) const;
  };

  std::shared_ptr<const PolicySnapshot> snapshot_;
  RuleSet enforced_;
  // Enforced and dry-run policies together; only when a dry-run policy applies.
  std::shared_ptr<const RuleSet> shadow_;
  std::vector<const CompiledPolicy*> dry_run_;  // for explain()
};

class PolicySnapshot : public std::enable_shared_from_this<PolicySnapshot> {
 public:
  // Compiles every policy. A policy that does not compile (the decoder should have refused it)
  // fails closed like one the controller refused: its refusedStandIn() denies everything for
  // the workloads it selects (AUDIT and dry-run policies are dropped); each is listed in
  // errors(). refused() lists every stand-in in force, refused here or by the controller.
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
  // "demo/p: <reason>" for each stand-in of a refused policy (they deny what they select).
  std::vector<std::string> refused() const;

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
