// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "policy/engine.h"

#include <algorithm>
#include <iterator>
#include <map>

#include "policy/rule_eval.h"
#include "policy/text.h"

namespace ferry::policy {
namespace {

using internal::evaluateRule;
using internal::makeView;
using internal::RuleOutcome;
using internal::View;
using model::PolicyAction;

// The first matching rule of a policy, or -1.
int firstMatch(const CompiledPolicy& p, const View& v) {
  for (size_t i = 0; i < p.rules.size(); ++i) {
    if (evaluateRule(p.rules[i], p.action, v, nullptr) == RuleOutcome::kMatch) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

bool isTunnel(const Request& r) {
  return r.http != nullptr && r.http->tunnel;
}

}  // namespace

std::string RuleRef::str() const {
  return policy == nullptr ? std::string("none") : text::cat(policy->key.str(), " rule ", rule);
}

namespace {

std::string describe(Decision::Reason reason, const RuleRef& rule) {
  switch (reason) {
    case Decision::Reason::kDenyMatched:
      if (rule.policy != nullptr && !rule.policy->refused.empty()) {
        return text::cat("denied: AuthorizationPolicy ", rule.policy->key.str(),
                         " was refused and fails closed until it is fixed (", rule.policy->refused,
                         ")");
      }
      return text::cat("denied by DENY policy ", rule.str());
    case Decision::Reason::kNoAllowPolicy:
      return "allowed: no ALLOW policy applies";
    case Decision::Reason::kAllowMatched:
      return text::cat("allowed by ALLOW policy ", rule.str());
    case Decision::Reason::kNoAllowMatched:
      return "denied: no ALLOW policy matched";
    case Decision::Reason::kTunnelNotNamed:
      return "denied: a tunnel (CONNECT or a non-WebSocket upgrade) needs an ALLOW rule naming "
             "its method";
  }
  return "?";
}

}  // namespace

std::string Decision::str() const {
  std::string out = describe(reason, rule);
  for (const auto& a : audits) {
    out += text::cat("; audited by ", a.str());
  }
  if (dry_run) {
    out += text::cat("; dry-run: ", describe(dry_run->reason, dry_run->rule));
  }
  return out;
}

std::string Explanation::str() const {
  std::string out = decision.str() + "\n";
  if (policies.empty()) {
    out += "  no policy applies to this workload\n";
  }
  for (const auto& p : policies) {
    out += text::cat("  ", model::actionName(p.action), " ", p.policy.str(),
                     p.dry_run ? " (dry-run)" : "",
                     p.refused.empty() ? "" : text::cat(" (refused: ", p.refused, ")"), "\n");
    if (p.rules.empty()) {
      out += "    (no rules: matches nothing)\n";
    }
    for (const auto& r : p.rules) {
      out += text::cat("    rule ", r.rule, ": ", r.matched ? "MATCH " : "", r.why, "\n");
    }
  }
  return out;
}

WorkloadPolicies::RuleIndex WorkloadPolicies::RuleIndex::build(
    const std::vector<const CompiledPolicy*>& policies,
    std::map<std::string, std::vector<uint32_t>>& keyed) {
  RuleIndex index;
  for (const CompiledPolicy* p : policies) {
    for (size_t r = 0; r < p->rules.size(); ++r) {
      const CompiledRule& rule = p->rules[r];
      auto at = static_cast<uint32_t>(index.rules.size());
      index.rules.push_back(Entry{p, static_cast<int>(r)});
      bool exact_principals_only = !rule.from.empty();
      for (const auto& source : rule.from) {
        exact_principals_only = exact_principals_only && !source.principals.values.empty();
        for (const auto& m : source.principals.values) {
          exact_principals_only = exact_principals_only && m.kind() == StringMatcher::Kind::kExact;
        }
      }
      if (!exact_principals_only) {
        index.unkeyed.push_back(at);
        continue;
      }
      for (const auto& source : rule.from) {
        for (const auto& m : source.principals.values) {
          auto& list = keyed[m.value()];
          if (list.empty() || list.back() != at) {
            list.push_back(at);
          }
        }
      }
    }
  }
  return index;
}

template <typename Visit>
void WorkloadPolicies::RuleIndex::forCandidates(const std::vector<uint32_t>* keyed,
                                                Visit visit) const {
  if (keyed == nullptr) {
    for (uint32_t next : unkeyed) {
      if (visit(rules[next])) {
        return;
      }
    }
    return;
  }
  size_t i = 0;
  size_t j = 0;
  while (i < unkeyed.size() || j < keyed->size()) {
    uint32_t next;
    if (j >= keyed->size() || (i < unkeyed.size() && unkeyed[i] < (*keyed)[j])) {
      next = unkeyed[i++];
    } else {
      next = (*keyed)[j++];
    }
    if (visit(rules[next])) {
      return;
    }
  }
}

void WorkloadPolicies::RuleSet::buildIndexes() {
  std::map<std::string, std::vector<uint32_t>> keyed[3];
  deny_index = RuleIndex::build(deny, keyed[kDenySlot]);
  allow_index = RuleIndex::build(allow, keyed[kAllowSlot]);
  audit_index = RuleIndex::build(audit, keyed[kAuditSlot]);
  for (int slot : {kDenySlot, kAllowSlot, kAuditSlot}) {
    for (auto& [principal, list] : keyed[slot]) {
      by_principal[principal][slot] = std::move(list);
    }
  }
}

Decision WorkloadPolicies::RuleSet::evaluate(const Request& request) const {
  View v = makeView(request);
  Decision d;
  auto matches = [&](const RuleIndex::Entry& e) {
    return evaluateRule(e.policy->rules[e.rule], e.policy->action, v, nullptr) ==
           RuleOutcome::kMatch;
  };
  const Keyed* keyed = nullptr;
  if (!request.source_principal.empty() && !by_principal.empty()) {
    auto it = by_principal.find(
        absl::string_view(request.source_principal.data(), request.source_principal.size()));
    keyed = it == by_principal.end() ? nullptr : &it->second;
  }
  auto keyedFor = [&](Slot slot) -> const std::vector<uint32_t>* {
    return keyed == nullptr || (*keyed)[slot].empty() ? nullptr : &(*keyed)[slot];
  };
  if (!audit.empty()) {
    audit_index.forCandidates(keyedFor(kAuditSlot), [&](const RuleIndex::Entry& e) {
      // Only the first matching rule of each AUDIT policy is listed.
      if ((d.audits.empty() || d.audits.back().policy != e.policy) && matches(e)) {
        d.audits.push_back(RuleRef{e.policy, e.rule});
      }
      return false;
    });
  }
  deny_index.forCandidates(keyedFor(kDenySlot), [&](const RuleIndex::Entry& e) {
    if (matches(e)) {
      d.reason = Decision::Reason::kDenyMatched;
      d.rule = RuleRef{e.policy, e.rule};
      return true;
    }
    return false;
  });
  if (d.reason == Decision::Reason::kDenyMatched) {
    d.allowed = false;
    return d;
  }
  if (allow.empty() && !isTunnel(request)) {
    d.allowed = true;
    d.reason = Decision::Reason::kNoAllowPolicy;
    return d;
  }
  allow_index.forCandidates(keyedFor(kAllowSlot), [&](const RuleIndex::Entry& e) {
    if (matches(e)) {
      d.allowed = true;
      d.reason = Decision::Reason::kAllowMatched;
      d.rule = RuleRef{e.policy, e.rule};
      return true;
    }
    return false;
  });
  if (!d.allowed) {
    d.reason =
        isTunnel(request) ? Decision::Reason::kTunnelNotNamed : Decision::Reason::kNoAllowMatched;
  }
  return d;
}

Decision WorkloadPolicies::RuleSet::evaluateLinear(const Request& request) const {
  View v = makeView(request);
  Decision d;
  for (const CompiledPolicy* p : audit) {
    if (int r = firstMatch(*p, v); r >= 0) {
      d.audits.push_back(RuleRef{p, r});
    }
  }
  for (const CompiledPolicy* p : deny) {
    if (int r = firstMatch(*p, v); r >= 0) {
      d.allowed = false;
      d.reason = Decision::Reason::kDenyMatched;
      d.rule = RuleRef{p, r};
      return d;
    }
  }
  if (allow.empty() && !isTunnel(request)) {
    d.allowed = true;
    d.reason = Decision::Reason::kNoAllowPolicy;
    return d;
  }
  for (const CompiledPolicy* p : allow) {
    if (int r = firstMatch(*p, v); r >= 0) {
      d.allowed = true;
      d.reason = Decision::Reason::kAllowMatched;
      d.rule = RuleRef{p, r};
      return d;
    }
  }
  d.allowed = false;
  d.reason =
      isTunnel(request) ? Decision::Reason::kTunnelNotNamed : Decision::Reason::kNoAllowMatched;
  return d;
}

Decision WorkloadPolicies::evaluate(const Request& request) const {
  Decision d = enforced_.evaluate(request);
  if (shadow_ != nullptr) {
    Decision shadow = shadow_->evaluate(request);
    d.dry_run = Decision::DryRun{shadow.allowed, shadow.reason, shadow.rule};
  }
  return d;
}

Explanation WorkloadPolicies::explain(const Request& request) const {
  Explanation e;
  e.decision = enforced_.evaluateLinear(request);
  if (shadow_ != nullptr) {
    Decision shadow = shadow_->evaluateLinear(request);
    e.decision.dry_run = Decision::DryRun{shadow.allowed, shadow.reason, shadow.rule};
  }
  View v = makeView(request);
  for (const auto* list : {&enforced_.deny, &enforced_.allow, &enforced_.audit, &dry_run_}) {
    for (const CompiledPolicy* p : *list) {
      Explanation::PolicyResult pr{p->key, p->action, {}, p->dry_run, p->refused};
      for (size_t i = 0; i < p->rules.size(); ++i) {
        Explanation::RuleResult rr;
        rr.rule = static_cast<int>(i);
        RuleOutcome o = evaluateRule(p->rules[i], p->action, v, &rr.why);
        rr.matched = o == RuleOutcome::kMatch;
        rr.skipped_at_l4 = o == RuleOutcome::kSkippedAtL4;
        pr.rules.push_back(std::move(rr));
      }
      e.policies.push_back(std::move(pr));
    }
  }
  return e;
}

std::shared_ptr<const PolicySnapshot> PolicySnapshot::build(
    const std::vector<model::AuthorizationPolicy>& policies, uint64_t version) {
  std::shared_ptr<PolicySnapshot> s(new PolicySnapshot());
  s->version_ = version;
  for (const auto& p : policies) {
    auto compiled = compile(p);
    if (compiled.ok()) {
      s->policies_.push_back(std::move(*compiled));
      continue;
    }
    std::string reason = std::string(compiled.status().message());
    s->errors_.push_back(text::cat("AuthorizationPolicy ", p.key.str(), ": ", reason));
    auto stand_in = refusedStandIn(p, reason);
    if (!stand_in) {
      continue;
    }
    auto closed = compile(*stand_in);
    if (closed.ok()) {  // always: a stand-in has no values
      s->policies_.push_back(std::move(*closed));
    }
  }
  std::sort(s->policies_.begin(), s->policies_.end(),
            [](const CompiledPolicy& a, const CompiledPolicy& b) { return a.key < b.key; });
  return s;
}

std::vector<std::string> PolicySnapshot::refused() const {
  std::vector<std::string> out;
  for (const auto& p : policies_) {
    if (!p.refused.empty()) {
      out.push_back(text::cat(p.key.str(), ": ", p.refused));
    }
  }
  return out;
}

WorkloadPolicies PolicySnapshot::forWorkload(std::string_view ns,
                                             const model::Labels& labels) const {
  WorkloadPolicies w;
  w.snapshot_ = shared_from_this();
  auto shadow = std::make_shared<WorkloadPolicies::RuleSet>();
  for (const auto& p : policies_) {
    if (!p.appliesTo(ns, labels)) {
      continue;
    }
    if (p.dry_run) {
      w.dry_run_.push_back(&p);
    }
    for (auto* set : {p.dry_run ? nullptr : &w.enforced_, shadow.get()}) {
      if (set == nullptr) {
        continue;
      }
      switch (p.action) {
        case PolicyAction::kDeny:
          set->deny.push_back(&p);
          break;
        case PolicyAction::kAllow:
          set->allow.push_back(&p);
          break;
        case PolicyAction::kAudit:
          set->audit.push_back(&p);
          break;
      }
    }
  }
  w.enforced_.buildIndexes();
  if (!w.dry_run_.empty()) {
    shadow->buildIndexes();
    w.shadow_ = std::move(shadow);
  }
  return w;
}

}  // namespace ferry::policy
