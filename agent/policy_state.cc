// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/policy_state.h"

#include <arpa/inet.h>

#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace ferry::agent {
namespace {

bool anyMatch(const std::vector<std::string>& patterns, const std::string& value) {
  for (const auto& p : patterns) {
    if (istioMatch(p, value)) {
      return true;
    }
  }
  return false;
}

bool inCidr(const std::string& cidr, const std::string& ip) {
  std::vector<std::string> parts = absl::StrSplit(cidr, '/');
  unsigned char net[16] = {}, addr[16] = {};
  int family = parts[0].find(':') == std::string::npos ? AF_INET : AF_INET6;
  if (inet_pton(family, parts[0].c_str(), net) != 1 || inet_pton(family, ip.c_str(), addr) != 1) {
    return false;
  }
  int bits = family == AF_INET ? 32 : 128;
  int prefix = bits;
  if (parts.size() == 2 && !absl::SimpleAtoi(parts[1], &prefix)) {
    return false;
  }
  for (int i = 0; i < prefix && i < bits; ++i) {
    int mask = 0x80 >> (i % 8);
    if ((net[i / 8] & mask) != (addr[i / 8] & mask)) {
      return false;
    }
  }
  return true;
}

bool anyCidr(const std::vector<std::string>& cidrs, const std::string& ip) {
  for (const auto& c : cidrs) {
    if (inCidr(c, ip)) {
      return true;
    }
  }
  return false;
}

bool selects(const std::optional<model::Labels>& selector, const model::Workload& w) {
  if (!selector) {
    return true;
  }
  for (const auto& [k, v] : *selector) {
    auto it = w.labels.find(k);
    if (it == w.labels.end() || it->second != v) {
      return false;
    }
  }
  return true;
}

// nullopt: the item needs L7 attributes and cannot be decided at L4.
std::optional<bool> sourceMatches(const model::Source& s, const ConnectionAttributes& a) {
  if (!s.request_principals.empty() || !s.not_request_principals.empty()) {
    return std::nullopt;
  }
  if (!s.principals.empty() && !anyMatch(s.principals, a.principal)) {
    return false;
  }
  if (!s.not_principals.empty() && anyMatch(s.not_principals, a.principal)) {
    return false;
  }
  if (!s.namespaces.empty() && !anyMatch(s.namespaces, a.source_namespace)) {
    return false;
  }
  if (!s.not_namespaces.empty() && anyMatch(s.not_namespaces, a.source_namespace)) {
    return false;
  }
  const auto& ipb = s.ip_blocks.empty() ? s.remote_ip_blocks : s.ip_blocks;
  if (!ipb.empty() && !anyCidr(ipb, a.source_ip)) {
    return false;
  }
  if ((!s.not_ip_blocks.empty() && anyCidr(s.not_ip_blocks, a.source_ip)) ||
      (!s.not_remote_ip_blocks.empty() && anyCidr(s.not_remote_ip_blocks, a.source_ip))) {
    return false;
  }
  return true;
}

std::optional<bool> operationMatches(const model::Operation& o, const ConnectionAttributes& a) {
  if (!o.hosts.empty() || !o.not_hosts.empty() || !o.methods.empty() || !o.not_methods.empty() ||
      !o.paths.empty() || !o.not_paths.empty()) {
    return std::nullopt;
  }
  std::string port = std::to_string(a.destination_port);
  if (!o.ports.empty() && !anyMatch(o.ports, port)) {
    return false;
  }
  if (!o.not_ports.empty() && anyMatch(o.not_ports, port)) {
    return false;
  }
  return true;
}

std::optional<bool> conditionMatches(const model::Condition& c, const ConnectionAttributes& a) {
  std::string value;
  if (c.key == "source.principal") {
    value = a.principal;
  } else if (c.key == "source.namespace") {
    value = a.source_namespace;
  } else if (c.key == "destination.port") {
    value = std::to_string(a.destination_port);
  } else if (c.key == "source.ip" || c.key == "remote.ip") {
    bool in = c.values.empty() || anyCidr(c.values, a.source_ip);
    bool out = !c.not_values.empty() && anyCidr(c.not_values, a.source_ip);
    return in && !out;
  } else if (c.key == "destination.ip") {
    bool in = c.values.empty() || anyCidr(c.values, a.destination_ip);
    bool out = !c.not_values.empty() && anyCidr(c.not_values, a.destination_ip);
    return in && !out;
  } else {
    return std::nullopt;  // request.* and other L7 keys
  }
  bool in = c.values.empty() || anyMatch(c.values, value);
  bool out = !c.not_values.empty() && anyMatch(c.not_values, value);
  return in && !out;
}

// Any item of a section matching decides it; otherwise an undecidable item leaves it open.
template <typename Items, typename Fn>
std::optional<bool> section(const Items& items, const ConnectionAttributes& a, Fn fn) {
  if (items.empty()) {
    return true;
  }
  bool undecidable = false;
  for (const auto& item : items) {
    std::optional<bool> m = fn(item, a);
    if (m && *m) {
      return true;
    }
    undecidable |= !m.has_value();
  }
  if (undecidable) {
    return std::nullopt;
  }
  return false;
}

// A rule matches when every present section matches (any item within from/to, all of when).
std::optional<bool> ruleMatches(const model::Rule& r, const ConnectionAttributes& a) {
  std::optional<bool> parts[] = {section(r.from, a, sourceMatches),
                                 section(r.to, a, operationMatches), true};
  for (const auto& c : r.when) {
    std::optional<bool> m = conditionMatches(c, a);
    if (!m) {
      parts[2] = parts[2] == false ? parts[2] : std::nullopt;
    } else if (!*m) {
      parts[2] = false;
    }
  }
  bool undecidable = false;
  for (const auto& p : parts) {
    if (p == false) {
      return false;  // a decidable part fails: no L7 attribute can rescue the rule
    }
    undecidable |= !p.has_value();
  }
  if (undecidable) {
    return std::nullopt;
  }
  return true;
}

bool applies(const model::AuthorizationPolicy& p, const model::Workload& w,
             const std::string& root_namespace) {
  if (p.root_namespace || p.key.ns == root_namespace) {
    return selects(p.selector, w);
  }
  return p.key.ns == w.key.ns && selects(p.selector, w);
}

}  // namespace

bool istioMatch(const std::string& pattern, const std::string& value) {
  if (pattern == "*") {
    return true;
  }
  if (!pattern.empty() && pattern.back() == '*') {
    return value.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  }
  if (!pattern.empty() && pattern.front() == '*') {
    size_t n = pattern.size() - 1;
    return value.size() >= n && value.compare(value.size() - n, n, pattern, 1, n) == 0;
  }
  return pattern == value;
}

Decision L4Authorizer::authorize(const model::NodeSnapshot& snapshot,
                                 const model::Workload& destination,
                                 const ConnectionAttributes& attrs) const {
  bool any_allow = false;
  const model::AuthorizationPolicy* allowed_by = nullptr;
  int allowed_rule = -1;
  for (const model::AuthorizationPolicy& p : snapshot.policies) {
    if (!applies(p, destination, root_namespace_) || p.action == model::PolicyAction::kAudit) {
      continue;
    }
    if (p.action == model::PolicyAction::kDeny) {
      for (size_t i = 0; i < p.rules.size(); ++i) {
        std::optional<bool> m = ruleMatches(p.rules[i], attrs);
        if (!m && attrs.http) {
          continue;
        }
        if (!m || *m) {
          return {false,
                  "denied by DENY policy " + p.key.str() +
                      (m ? "" : " (rule needs HTTP attributes: denied at L4)"),
                  p.key.str(), static_cast<int>(i)};
        }
      }
      continue;
    }
    any_allow = true;
    for (size_t i = 0; i < p.rules.size(); ++i) {
      std::optional<bool> m = ruleMatches(p.rules[i], attrs);
      if ((m ? *m : attrs.http) && allowed_by == nullptr) {
        allowed_by = &p;
        allowed_rule = static_cast<int>(i);
      }
    }
  }
  if (!any_allow) {
    return {true, "no ALLOW policy selects the workload"};
  }
  if (allowed_by != nullptr) {
    return {true, "allowed by " + allowed_by->key.str(), allowed_by->key.str(), allowed_rule};
  }
  return {false, "no ALLOW policy matched"};
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
