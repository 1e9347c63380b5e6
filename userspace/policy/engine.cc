// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "policy/engine.h"

#include <algorithm>
#include <iterator>
#include <map>

#include "policy/text.h"

namespace ferry::policy {
namespace {

using model::PolicyAction;

// Per-request values derived once, shared by every rule.
struct View {
  const Request& request;
  std::string_view source_namespace;  // from the SPIFFE ID; empty for plaintext peers
  std::string_view path;              // without the query string
  bool http;
};

// "spiffe://td/ns/<ns>/sa/<sa>" -> <ns>; empty when the ID does not have that shape.
std::string_view namespaceOf(std::string_view principal) {
  constexpr std::string_view kScheme = "spiffe://";
  if (!principal.starts_with(kScheme)) {
    return {};
  }
  std::string_view rest = principal.substr(kScheme.size());
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || !rest.substr(slash).starts_with("/ns/")) {
    return {};
  }
  rest = rest.substr(slash + 4);
  auto end = rest.find('/');
  if (end == std::string_view::npos || end == 0 || !rest.substr(end).starts_with("/sa/")) {
    return {};
  }
  return rest.substr(0, end);
}

View makeView(const Request& r) {
  View v{r, namespaceOf(r.source_principal), {}, r.http != nullptr};
  if (r.http != nullptr) {
    v.path = r.http->path.substr(0, r.http->path.find('?'));
  }
  return v;
}

std::string show(std::string_view s) {
  return s.empty() ? "(absent)" : text::cat("'", s, "'");
}
std::string show(const StringMatcher& m) {
  return text::cat("'", m.pattern(), "'");
}
std::string show(const Cidr& c) {
  return c.str();
}
std::string show(uint16_t p) {
  return std::to_string(p);
}

template <typename T>
std::string showList(const std::vector<T>& items) {
  std::string out = "[";
  for (const auto& i : items) {
    out += (out.size() > 1 ? ", " : "") + show(i);
  }
  return out + "]";
}

// Istio's x / notX pair. `at` + `field` name the field and `value` shows the request's value;
// all three are used only when explaining (why != null), never on the decision path.
template <typename T, typename Pred, typename Value>
bool holds(const Field<T>& f, Pred matches, std::string_view at, std::string_view field,
           Value value, std::string* why) {
  if (!f.values.empty() &&
      std::none_of(f.values.begin(), f.values.end(), [&](const T& m) { return matches(m); })) {
    if (why != nullptr) {
      *why = text::cat(at, field, ": ", value(), " matches none of ", showList(f.values));
    }
    return false;
  }
  for (const T& m : f.not_values) {
    if (matches(m)) {
      if (why != nullptr) {
        *why = text::cat(at, field, ": ", value(), " matches excluded ", show(m));
      }
      return false;
    }
  }
  return true;
}

auto stringIs(std::string_view value) {
  return [value](const StringMatcher& m) { return !value.empty() && m.matches(value); };
}

auto ipIn(const std::optional<IpAddress>& ip) {
  return [&ip](const Cidr& c) { return ip.has_value() && c.contains(*ip); };
}

auto portIs(uint16_t port) {
  return [port](uint16_t p) { return p == port; };
}

auto showString(std::string_view s) {
  return [s] { return show(s); };
}

auto showIp(const std::optional<IpAddress>& ip) {
  return [&ip] { return ip ? ip->str() : std::string("(absent)"); };
}

// In an L4 decision `skip_http` is set and HTTP-only fields count as matching (DENY/AUDIT
// rules, see engine.h); ALLOW rules needing HTTP never get here at L4.
bool sourceHolds(const CompiledSource& s, const View& v, bool skip_http, std::string_view at,
                 std::string* why) {
  const Request& r = v.request;
  return holds(s.principals, stringIs(r.source_principal), at, "principals",
               showString(r.source_principal), why) &&
         holds(s.namespaces, stringIs(v.source_namespace), at, "namespaces",
               showString(v.source_namespace), why) &&
         holds(s.ip_blocks, ipIn(r.source_ip), at, "ipBlocks", showIp(r.source_ip), why) &&
         (skip_http ||
          // Ferry has no request authentication (JWT): the request principal is always absent.
          (holds(s.request_principals, stringIs({}), at, "requestPrincipals", showString({}),
                 why) &&
           // No trusted proxies in front of a pod: the remote IP is the peer's IP.
           holds(s.remote_ip_blocks, ipIn(r.source_ip), at, "remoteIpBlocks", showIp(r.source_ip),
                 why)));
}

bool operationHolds(const CompiledOperation& o, const View& v, bool skip_http, std::string_view at,
                    std::string* why) {
  const Request& r = v.request;
  if (!holds(
          o.ports, portIs(r.destination_port), at, "ports",
          [&] { return std::to_string(r.destination_port); }, why)) {
    return false;
  }
  if (skip_http) {
    return true;
  }
  std::string_view method = v.http ? r.http->method : std::string_view();
  std::string_view host = v.http ? r.http->host : std::string_view();
  return holds(o.methods, stringIs(method), at, "methods", showString(method), why) &&
         holds(o.paths, stringIs(v.path), at, "paths", showString(v.path), why) &&
         holds(o.hosts, stringIs(host), at, "hosts", showString(host), why);
}

// request.headers[name]: matches when any occurrence of the header matches, so that sending a
// header twice can never slip past a DENY on one of its values.
bool headerHolds(const CompiledCondition& c, const View& v, std::string_view at, std::string* why) {
  static const std::vector<std::pair<std::string_view, std::string_view>> kNone;
  const auto& headers = v.http ? v.request.http->headers : kNone;
  auto matches = [&](const StringMatcher& m) {
    for (const auto& [name, value] : headers) {
      // "*" means present, even with an empty value.
      if (text::equalsIgnoreCase(name, c.attribute.header) &&
          (m.kind() == StringMatcher::Kind::kPresence || m.matches(value))) {
        return true;
      }
    }
    return false;
  };
  auto shown = [&] {
    std::string out;
    for (const auto& [name, value] : headers) {
      if (text::equalsIgnoreCase(name, c.attribute.header)) {
        out += (out.empty() ? "" : ", ") + show(value);
      }
    }
    return out.empty() ? std::string("(absent)") : out;
  };
  return holds(c.strings, matches, at, "", shown, why);
}

bool conditionHolds(const CompiledCondition& c, const View& v, std::string_view at,
                    std::string* why) {
  const Request& r = v.request;
  switch (c.attribute.kind) {
    case AttributeKind::kRequestHeader:
      return headerHolds(c, v, at, why);
    case AttributeKind::kSourceIp:
    case AttributeKind::kRemoteIp:
      return holds(c.cidrs, ipIn(r.source_ip), at, "", showIp(r.source_ip), why);
    case AttributeKind::kDestinationIp:
      return holds(c.cidrs, ipIn(r.destination_ip), at, "", showIp(r.destination_ip), why);
    case AttributeKind::kDestinationPort:
      return holds(
          c.ports, portIs(r.destination_port), at, "",
          [&] { return std::to_string(r.destination_port); }, why);
    case AttributeKind::kSourceNamespace:
      return holds(c.strings, stringIs(v.source_namespace), at, "", showString(v.source_namespace),
                   why);
    case AttributeKind::kSourcePrincipal:
      return holds(c.strings, stringIs(r.source_principal), at, "", showString(r.source_principal),
                   why);
    case AttributeKind::kConnectionSni:
      return holds(c.strings, stringIs(r.sni), at, "", showString(r.sni), why);
    case AttributeKind::kRequestAuth:
      return holds(c.strings, stringIs({}), at, "", showString({}), why);
  }
  return false;
}

enum class RuleOutcome { kMatch, kNoMatch, kSkippedAtL4 };

RuleOutcome evaluateRule(const CompiledRule& rule, PolicyAction action, const View& v,
                         std::string* why) {
  bool skip_http = !v.http;
  if (skip_http && rule.needs_http && action == PolicyAction::kAllow) {
    if (why != nullptr) {
      *why = "needs HTTP attributes: an ALLOW rule like this allows nothing at L4";
    }
    return RuleOutcome::kSkippedAtL4;
  }
  if (!rule.from.empty()) {
    bool any = false;
    for (size_t i = 0; i < rule.from.size() && !any; ++i) {
      std::string at = why ? text::cat("from[", i, "].source.") : std::string();
      any = sourceHolds(rule.from[i], v, skip_http, at, i == 0 ? why : nullptr);
    }
    if (!any) {
      return RuleOutcome::kNoMatch;
    }
  }
  if (!rule.to.empty()) {
    bool any = false;
    for (size_t i = 0; i < rule.to.size() && !any; ++i) {
      std::string at = why ? text::cat("to[", i, "].operation.") : std::string();
      any = operationHolds(rule.to[i], v, skip_http, at, i == 0 ? why : nullptr);
    }
    if (!any) {
      return RuleOutcome::kNoMatch;
    }
  }
  for (size_t i = 0; i < rule.when.size(); ++i) {
    const CompiledCondition& c = rule.when[i];
    if (skip_http && !isL4Attribute(c.attribute.kind)) {
      continue;  // DENY/AUDIT at L4: the HTTP-only condition is dropped
    }
    std::string at = why ? text::cat("when[", i, "] ", c.key) : std::string();
    if (!conditionHolds(c, v, at, why)) {
      return RuleOutcome::kNoMatch;
    }
  }
  if (why != nullptr) {
    *why = skip_http && rule.needs_http ? "matched (HTTP-only parts ignored at L4)" : "matched";
  }
  return RuleOutcome::kMatch;
}

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
