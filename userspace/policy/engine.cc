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

std::string_view actionName(PolicyAction a) {
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

}  // namespace

std::string RuleRef::str() const {
  return policy == nullptr ? std::string("none") : text::cat(policy->key.str(), " rule ", rule);
}

std::string Decision::str() const {
  std::string out;
  switch (reason) {
    case Reason::kDenyMatched:
      out = text::cat("denied by DENY policy ", rule.str());
      break;
    case Reason::kNoAllowPolicy:
      out = "allowed: no ALLOW policy applies";
      break;
    case Reason::kAllowMatched:
      out = text::cat("allowed by ALLOW policy ", rule.str());
      break;
    case Reason::kNoAllowMatched:
      out = "denied: no ALLOW policy matched";
      break;
  }
  for (const auto& a : audits) {
    out += text::cat("; audited by ", a.str());
  }
  return out;
}

std::string Explanation::str() const {
  std::string out = decision.str() + "\n";
  if (policies.empty()) {
    out += "  no policy applies to this workload\n";
  }
  for (const auto& p : policies) {
    out += text::cat("  ", actionName(p.action), " ", p.policy.str(), "\n");
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
    const std::vector<const CompiledPolicy*>& policies) {
  RuleIndex index;
  std::map<std::string, std::vector<uint32_t>> keyed;
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
  index.by_principal.assign(std::make_move_iterator(keyed.begin()),
                            std::make_move_iterator(keyed.end()));
  return index;
}

template <typename Visit>
void WorkloadPolicies::RuleIndex::forCandidates(std::string_view principal, Visit visit) const {
  static const std::vector<uint32_t> kNone;
  const std::vector<uint32_t>* keyed = &kNone;
  if (!principal.empty()) {
    auto it =
        std::lower_bound(by_principal.begin(), by_principal.end(), principal,
                         [](const auto& entry, std::string_view key) { return entry.first < key; });
    if (it != by_principal.end() && it->first == principal) {
      keyed = &it->second;
    }
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

Decision WorkloadPolicies::evaluate(const Request& request) const {
  View v = makeView(request);
  Decision d;
  auto matches = [&](const RuleIndex::Entry& e) {
    return evaluateRule(e.policy->rules[e.rule], e.policy->action, v, nullptr) ==
           RuleOutcome::kMatch;
  };
  audit_index_.forCandidates(request.source_principal, [&](const RuleIndex::Entry& e) {
    // Only the first matching rule of each AUDIT policy is listed.
    if ((d.audits.empty() || d.audits.back().policy != e.policy) && matches(e)) {
      d.audits.push_back(RuleRef{e.policy, e.rule});
    }
    return false;
  });
  deny_index_.forCandidates(request.source_principal, [&](const RuleIndex::Entry& e) {
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
  if (allow_.empty()) {
    d.allowed = true;
    d.reason = Decision::Reason::kNoAllowPolicy;
    return d;
  }
  allow_index_.forCandidates(request.source_principal, [&](const RuleIndex::Entry& e) {
    if (matches(e)) {
      d.allowed = true;
      d.reason = Decision::Reason::kAllowMatched;
      d.rule = RuleRef{e.policy, e.rule};
      return true;
    }
    return false;
  });
  if (!d.allowed) {
    d.reason = Decision::Reason::kNoAllowMatched;
  }
  return d;
}

Decision WorkloadPolicies::evaluateLinear(const Request& request) const {
  View v = makeView(request);
  Decision d;
  for (const CompiledPolicy* p : audit_) {
    if (int r = firstMatch(*p, v); r >= 0) {
      d.audits.push_back(RuleRef{p, r});
    }
  }
  for (const CompiledPolicy* p : deny_) {
    if (int r = firstMatch(*p, v); r >= 0) {
      d.allowed = false;
      d.reason = Decision::Reason::kDenyMatched;
      d.rule = RuleRef{p, r};
      return d;
    }
  }
  if (allow_.empty()) {
    d.allowed = true;
    d.reason = Decision::Reason::kNoAllowPolicy;
    return d;
  }
  for (const CompiledPolicy* p : allow_) {
    if (int r = firstMatch(*p, v); r >= 0) {
      d.allowed = true;
      d.reason = Decision::Reason::kAllowMatched;
      d.rule = RuleRef{p, r};
      return d;
    }
  }
  d.allowed = false;
  d.reason = Decision::Reason::kNoAllowMatched;
  return d;
}

Explanation WorkloadPolicies::explain(const Request& request) const {
  Explanation e;
  e.decision = evaluateLinear(request);
  View v = makeView(request);
  for (const auto* list : {&deny_, &allow_, &audit_}) {
    for (const CompiledPolicy* p : *list) {
      Explanation::PolicyResult pr{p->key, p->action, {}};
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
    s->errors_.push_back(text::cat("AuthorizationPolicy ", p.key.str(), ": ",
                                   std::string(compiled.status().message())));
    if (p.action == PolicyAction::kAudit) {
      continue;
    }
    // Same key, action and selector, none of the rules that failed.
    model::AuthorizationPolicy stripped = p;
    stripped.rules.clear();
    if (p.action == PolicyAction::kDeny) {
      stripped.rules.emplace_back();  // an empty rule matches everything
    }
    auto closed = compile(stripped);
    if (!closed.ok()) {
      continue;  // unreachable: a policy without values always compiles
    }
    s->policies_.push_back(std::move(*closed));
  }
  std::sort(s->policies_.begin(), s->policies_.end(),
            [](const CompiledPolicy& a, const CompiledPolicy& b) { return a.key < b.key; });
  return s;
}

WorkloadPolicies PolicySnapshot::forWorkload(std::string_view ns,
                                             const model::Labels& labels) const {
  WorkloadPolicies w;
  w.snapshot_ = shared_from_this();
  for (const auto& p : policies_) {
    if (!p.appliesTo(ns, labels)) {
      continue;
    }
    switch (p.action) {
      case PolicyAction::kDeny:
        w.deny_.push_back(&p);
        break;
      case PolicyAction::kAllow:
        w.allow_.push_back(&p);
        break;
      case PolicyAction::kAudit:
        w.audit_.push_back(&p);
        break;
    }
  }
  w.deny_index_ = WorkloadPolicies::RuleIndex::build(w.deny_);
  w.allow_index_ = WorkloadPolicies::RuleIndex::build(w.allow_);
  w.audit_index_ = WorkloadPolicies::RuleIndex::build(w.audit_);
  return w;
}

}  // namespace ferry::policy
