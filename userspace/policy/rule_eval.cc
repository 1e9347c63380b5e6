// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "policy/rule_eval.h"

#include <algorithm>

#include "policy/text.h"

namespace ferry::policy::internal {

using model::PolicyAction;

namespace {

// "spiffe://td/ns/<ns>/sa/<sa>" -> {<ns>, <sa>}; empty when the ID does not have that shape.
std::pair<std::string_view, std::string_view> identityOf(std::string_view principal) {
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
  std::string_view sa = rest.substr(end + 4);
  if (sa.empty() || sa.find('/') != std::string_view::npos) {
    return {};
  }
  return {rest.substr(0, end), sa};
}

std::string show(std::string_view s) {
  return s.empty() ? "(absent)" : text::cat("'", s, "'");
}
std::string show(const StringMatcher& m) {
  return text::cat("'", m.pattern(), "'");
}
std::string show(const ServiceAccountMatcher& m) {
  return text::cat("'", m.pattern, "'");
}
std::string show(const net::Cidr& c) {
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

auto ipIn(const std::optional<net::IpAddress>& ip) {
  return [&ip](const net::Cidr& c) { return ip.has_value() && c.contains(*ip); };
}

auto portIs(uint16_t port) {
  return [port](uint16_t p) { return p == port; };
}

auto showString(std::string_view s) {
  return [s] { return show(s); };
}

auto showIp(const std::optional<net::IpAddress>& ip) {
  return [&ip] { return ip ? ip->str() : std::string("(absent)"); };
}

// An HTTP-only field that cannot be evaluated (no request): what it counts as.
bool unknownHttp(HttpParts parts, bool set, std::string_view at, std::string_view field,
                 std::string* why) {
  if (parts == HttpParts::kAssumeNoMatch && set) {
    if (why != nullptr) {
      *why = text::cat(at, field, ": needs the HTTP request (decided per request)");
    }
    return false;
  }
  return true;
}

bool namesExactly(const Field<StringMatcher>& field, std::string_view value) {
  for (const StringMatcher& m : field.values) {
    if (m.kind() == StringMatcher::Kind::kExact && m.value() == value) {
      return true;
    }
  }
  return false;
}

bool sourceHolds(const CompiledSource& s, const View& v, HttpParts parts, std::string_view at,
                 std::string* why) {
  const Request& r = v.request;
  if (s.empty) {
    if (why != nullptr) {
      *why = text::cat(at.substr(0, at.size() - 1), ": {} matches nothing (as in ztunnel)");
    }
    return false;
  }
  auto serviceAccountIs = [&](const ServiceAccountMatcher& m) {
    return !v.source_service_account.empty() && m.ns == v.source_namespace &&
           m.name == v.source_service_account;
  };
  auto showServiceAccount = [&] {
    return v.source_service_account.empty()
               ? std::string("(absent)")
               : text::cat("'", v.source_namespace, "/", v.source_service_account, "'");
  };
  if (!(holds(s.principals, stringIs(r.source_principal), at, "principals",
              showString(r.source_principal), why) &&
        holds(s.namespaces, stringIs(v.source_namespace), at, "namespaces",
              showString(v.source_namespace), why) &&
        holds(s.service_accounts, serviceAccountIs, at, "serviceAccounts", showServiceAccount,
              why) &&
        holds(s.ip_blocks, ipIn(r.source_ip), at, "ipBlocks", showIp(r.source_ip), why))) {
    return false;
  }
  if (parts != HttpParts::kEvaluate) {
    return unknownHttp(parts, s.request_principals.set(), at, "requestPrincipals", why) &&
           unknownHttp(parts, s.remote_ip_blocks.set(), at, "remoteIpBlocks", why);
  }
  // A request without a verified JWT has no request principal: no value, `*` included, matches.
  std::string_view request_principal = r.auth ? r.auth->principal : std::string_view();
  return holds(s.request_principals, stringIs(request_principal), at, "requestPrincipals",
               showString(request_principal), why) &&
         // No trusted proxies in front of a pod: the remote IP is the peer's IP.
         holds(s.remote_ip_blocks, ipIn(r.source_ip), at, "remoteIpBlocks", showIp(r.source_ip),
               why);
}

bool operationHolds(const CompiledOperation& o, const View& v, HttpParts parts, std::string_view at,
                    std::string* why) {
  const Request& r = v.request;
  if (!holds(
          o.ports, portIs(r.destination_port), at, "ports",
          [&] { return std::to_string(r.destination_port); }, why)) {
    return false;
  }
  if (parts != HttpParts::kEvaluate) {
    return unknownHttp(parts, o.methods.set(), at, "methods", why) &&
           unknownHttp(parts, o.paths.set(), at, "paths", why) &&
           unknownHttp(parts, o.hosts.set(), at, "hosts", why);
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

// request.auth.audiences and request.auth.claims[...]: a list attribute matches when any of its
// values matches (Istio's list matcher), and a `notValues` entry excludes when any does.
bool authListHolds(const CompiledCondition& c, const RequestAuth* auth, std::string_view at,
                   std::string* why) {
  std::vector<std::string_view> values;
  if (auth != nullptr && c.attribute.kind == AttributeKind::kRequestAudiences) {
    values = auth->audiences;
  } else if (auth != nullptr) {
    for (const auto& [name, value] : auth->claims) {
      if (name == c.attribute.claim) {
        values.push_back(value);
      }
    }
  }
  auto matches = [&](const StringMatcher& m) {
    return std::any_of(values.begin(), values.end(),
                       [&](std::string_view value) { return !value.empty() && m.matches(value); });
  };
  auto shown = [&] {
    std::string out;
    for (std::string_view value : values) {
      out += (out.empty() ? "" : ", ") + show(value);
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
    case AttributeKind::kRequestPrincipal:
    case AttributeKind::kRequestPresenter: {
      std::string_view value;
      if (r.auth != nullptr) {
        value = c.attribute.kind == AttributeKind::kRequestPrincipal ? r.auth->principal
                                                                     : r.auth->presenter;
      }
      return holds(c.strings, stringIs(value), at, "", showString(value), why);
    }
    case AttributeKind::kRequestAudiences:
    case AttributeKind::kRequestClaim:
      return authListHolds(c, r.auth, at, why);
  }
  return false;
}

}  // namespace

View makeView(const Request& r) {
  auto [ns, sa] = identityOf(r.source_principal);
  View v{r, ns, sa, {}, r.http != nullptr};
  if (r.http != nullptr) {
    v.path = r.http->path.substr(0, r.http->path.find('?'));
  }
  return v;
}

HttpParts httpPartsFor(const CompiledRule& rule, PolicyAction action, const View& v) {
  if (v.http || !rule.needs_http) {
    return HttpParts::kEvaluate;
  }
  if (!v.request.http_port) {
    // A TCP port: Istio's documented L4 projection (engine.h).
    return action == PolicyAction::kAllow ? HttpParts::kSkipRule : HttpParts::kAssumeMatch;
  }
  // An HTTP port before any request: admit when some request could be allowed, refuse only
  // what every request would be refused for; each request is decided again.
  return action == PolicyAction::kAllow ? HttpParts::kAssumeMatch : HttpParts::kAssumeNoMatch;
}

RuleOutcome evaluateRule(const CompiledRule& rule, PolicyAction action, const View& v,
                         std::string* why) {
  HttpParts parts = httpPartsFor(rule, action, v);
  if (parts == HttpParts::kSkipRule) {
    if (why != nullptr) {
      *why = "needs HTTP attributes: an ALLOW rule like this allows nothing on a TCP port";
    }
    return RuleOutcome::kSkippedAtL4;
  }
  if (!rule.from.empty()) {
    bool any = false;
    for (size_t i = 0; i < rule.from.size() && !any; ++i) {
      std::string at = why ? text::cat("from[", i, "].source.") : std::string();
      any = sourceHolds(rule.from[i], v, parts, at, i == 0 ? why : nullptr);
    }
    if (!any) {
      return RuleOutcome::kNoMatch;
    }
  }
  // A tunnel is allowed only by an operation naming its method (request.h).
  const bool tunnel = action == PolicyAction::kAllow && v.http && v.request.http->tunnel;
  if (tunnel && rule.to.empty()) {
    if (why != nullptr) {
      *why = "names no method: an ALLOW rule like this does not allow a tunnel";
    }
    return RuleOutcome::kNoMatch;
  }
  if (!rule.to.empty()) {
    bool any = false;
    for (size_t i = 0; i < rule.to.size() && !any; ++i) {
      std::string at = why ? text::cat("to[", i, "].operation.") : std::string();
      if (tunnel && !namesExactly(rule.to[i].methods, v.request.http->method)) {
        if (why != nullptr && i == 0) {
          *why = text::cat(at, "methods: does not name ", show(v.request.http->method),
                           ", which a tunnel needs");
        }
        continue;
      }
      any = operationHolds(rule.to[i], v, parts, at, i == 0 ? why : nullptr);
    }
    if (!any) {
      return RuleOutcome::kNoMatch;
    }
  }
  for (size_t i = 0; i < rule.when.size(); ++i) {
    const CompiledCondition& c = rule.when[i];
    std::string at = why ? text::cat("when[", i, "] ", c.key) : std::string();
    if (parts != HttpParts::kEvaluate && !isL4Attribute(c.attribute.kind)) {
      if (!unknownHttp(parts, true, at, "", why)) {
        return RuleOutcome::kNoMatch;
      }
      continue;  // DENY/AUDIT on a TCP port: the HTTP-only condition is dropped
    }
    if (!conditionHolds(c, v, at, why)) {
      return RuleOutcome::kNoMatch;
    }
  }
  if (why != nullptr) {
    *why = parts == HttpParts::kAssumeMatch
               ? (v.request.http_port ? "could match (HTTP parts decided per request)"
                                      : "matched (HTTP-only parts dropped on a TCP port)")
               : "matched";
  }
  return RuleOutcome::kMatch;
}

}  // namespace ferry::policy::internal
