// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include <cctype>

#include "policy/compiled.h"
#include "policy/text.h"

namespace ferry::policy {
namespace {

// Turns a value error into one naming the field, so a policy that reached the engine without
// the decoder (another source, a future API) still explains itself.
class Compiler {
 public:
  absl::Status status() const { return status_; }

  void fail(const std::string& path, const absl::Status& st) {
    if (status_.ok() && !st.ok()) {
      status_ = absl::InvalidArgumentError(text::cat(path, ": ", std::string(st.message())));
    }
  }

  Field<StringMatcher> patterns(const std::string& path, const std::vector<std::string>& values,
                                const std::vector<std::string>& not_values,
                                StringMatcher (*make)(std::string_view),
                                absl::Status (*check)(std::string_view) = checkPattern) {
    Field<StringMatcher> f;
    auto build = [&](const std::string& p, const std::vector<std::string>& in,
                     std::vector<StringMatcher>& out) {
      for (size_t i = 0; i < in.size(); ++i) {
        fail(text::cat(p, "[", i, "]"), check(in[i]));
        out.push_back(make(in[i]));
      }
    };
    build(path, values, f.values);
    build(notName(path), not_values, f.not_values);
    return f;
  }

  Field<ServiceAccountMatcher> serviceAccounts(const std::string& path,
                                               const std::vector<std::string>& values,
                                               const std::vector<std::string>& not_values) {
    Field<ServiceAccountMatcher> f;
    auto build = [&](const std::string& p, const std::vector<std::string>& in,
                     std::vector<ServiceAccountMatcher>& out) {
      for (size_t i = 0; i < in.size(); ++i) {
        fail(text::cat(p, "[", i, "]"), checkServiceAccount(in[i]));
        auto slash = in[i].find('/');
        out.push_back(ServiceAccountMatcher{
            in[i].substr(0, slash), slash == std::string::npos ? "" : in[i].substr(slash + 1),
            in[i]});
      }
    };
    build(path, values, f.values);
    build(notName(path), not_values, f.not_values);
    return f;
  }

  Field<net::Cidr> cidrs(const std::string& path, const std::vector<std::string>& values,
                         const std::vector<std::string>& not_values) {
    Field<net::Cidr> f;
    auto build = [&](const std::string& p, const std::vector<std::string>& in,
                     std::vector<net::Cidr>& out) {
      for (size_t i = 0; i < in.size(); ++i) {
        auto c = net::Cidr::parse(in[i]);
        fail(text::cat(p, "[", i, "]"), c.status());
        if (c.ok()) {
          out.push_back(*c);
        }
      }
    };
    build(path, values, f.values);
    build(notName(path), not_values, f.not_values);
    return f;
  }

  Field<uint16_t> ports(const std::string& path, const std::vector<std::string>& values,
                        const std::vector<std::string>& not_values) {
    Field<uint16_t> f;
    auto build = [&](const std::string& p, const std::vector<std::string>& in,
                     std::vector<uint16_t>& out) {
      for (size_t i = 0; i < in.size(); ++i) {
        auto port = parsePort(in[i]);
        fail(text::cat(p, "[", i, "]"), port.status());
        if (port.ok()) {
          out.push_back(*port);
        }
      }
    };
    build(path, values, f.values);
    build(notName(path), not_values, f.not_values);
    return f;
  }

 private:
  // "x.principals" -> "x.notPrincipals"
  static std::string notName(const std::string& path) {
    auto dot = path.rfind('.');
    std::string last = path.substr(dot + 1);
    last[0] = static_cast<char>(last[0] - 'a' + 'A');
    return text::cat(path.substr(0, dot + 1), "not", last);
  }

  absl::Status status_;
};

// RFC 1123: a label (namespace names) or, with dots, a subdomain (service account names).
bool isDnsName(std::string_view s, bool subdomain) {
  size_t max = subdomain ? 253 : 63;
  if (s.empty() || s.size() > max || !std::isalnum(static_cast<unsigned char>(s.front())) ||
      !std::isalnum(static_cast<unsigned char>(s.back()))) {
    return false;
  }
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          (subdomain && c == '.'))) {
      return false;
    }
  }
  return true;
}

bool isEmpty(const model::Source& s) {
  return s.principals.empty() && s.not_principals.empty() && s.namespaces.empty() &&
         s.not_namespaces.empty() && s.ip_blocks.empty() && s.not_ip_blocks.empty() &&
         s.remote_ip_blocks.empty() && s.not_remote_ip_blocks.empty() &&
         s.request_principals.empty() && s.not_request_principals.empty() &&
         s.service_accounts.empty() && s.not_service_accounts.empty();
}

bool hasL7(const CompiledSource& s) {
  return s.request_principals.set() || s.remote_ip_blocks.set();
}

bool hasL7(const CompiledOperation& o) {
  return o.hosts.set() || o.methods.set() || o.paths.set();
}

}  // namespace

bool CompiledPolicy::appliesTo(std::string_view ns, const model::Labels& labels) const {
  if (!root_namespace && key.ns != ns) {
    return false;
  }
  return !selector || model::labelsMatch(*selector, labels);
}

absl::StatusOr<CompiledPolicy> compile(const model::AuthorizationPolicy& policy) {
  Compiler c;
  CompiledPolicy out;
  out.key = policy.key;
  out.action = policy.action;
  out.selector = policy.selector;
  out.root_namespace = policy.root_namespace;
  out.dry_run = policy.dry_run;
  out.refused = policy.refused;
  for (size_t r = 0; r < policy.rules.size(); ++r) {
    const model::Rule& rule = policy.rules[r];
    CompiledRule cr;
    std::string rp = text::cat("rules[", r, "]");
    for (size_t i = 0; i < rule.from.size(); ++i) {
      const model::Source& s = rule.from[i];
      std::string p = text::cat(rp, ".from[", i, "].source.");
      CompiledSource cs;
      cs.principals =
          c.patterns(p + "principals", s.principals, s.not_principals, StringMatcher::principal);
      cs.request_principals = c.patterns(p + "requestPrincipals", s.request_principals,
                                         s.not_request_principals, StringMatcher::fromPattern);
      cs.namespaces =
          c.patterns(p + "namespaces", s.namespaces, s.not_namespaces, StringMatcher::fromPattern);
      cs.service_accounts =
          c.serviceAccounts(p + "serviceAccounts", s.service_accounts, s.not_service_accounts);
      cs.empty = isEmpty(s);
      cs.ip_blocks = c.cidrs(p + "ipBlocks", s.ip_blocks, s.not_ip_blocks);
      cs.remote_ip_blocks =
          c.cidrs(p + "remoteIpBlocks", s.remote_ip_blocks, s.not_remote_ip_blocks);
      cr.needs_http = cr.needs_http || hasL7(cs);
      cr.from.push_back(std::move(cs));
    }
    for (size_t i = 0; i < rule.to.size(); ++i) {
      const model::Operation& o = rule.to[i];
      std::string p = text::cat(rp, ".to[", i, "].operation.");
      CompiledOperation co;
      co.hosts = c.patterns(p + "hosts", o.hosts, o.not_hosts, StringMatcher::host);
      co.methods = c.patterns(p + "methods", o.methods, o.not_methods, StringMatcher::fromPattern,
                              checkMethod);
      co.paths =
          c.patterns(p + "paths", o.paths, o.not_paths, StringMatcher::fromPattern, checkPath);
      co.ports = c.ports(p + "ports", o.ports, o.not_ports);
      cr.needs_http = cr.needs_http || hasL7(co);
      cr.to.push_back(std::move(co));
    }
    for (size_t i = 0; i < rule.when.size(); ++i) {
      const model::Condition& w = rule.when[i];
      std::string p = text::cat(rp, ".when[", i, "]");
      auto attribute = parseConditionKey(w.key);
      c.fail(p + ".key", attribute.status());
      if (!attribute.ok()) {
        continue;
      }
      if (w.values.empty() && w.not_values.empty()) {
        c.fail(p, absl::InvalidArgumentError("needs values or notValues"));
      }
      CompiledCondition cc;
      cc.key = w.key;
      cc.attribute = *attribute;
      switch (attribute->kind) {
        case AttributeKind::kSourceIp:
        case AttributeKind::kRemoteIp:
        case AttributeKind::kDestinationIp:
          cc.cidrs = c.cidrs(p + ".values", w.values, w.not_values);
          break;
        case AttributeKind::kDestinationPort:
          cc.ports = c.ports(p + ".values", w.values, w.not_values);
          break;
        case AttributeKind::kSourcePrincipal:
          cc.strings = c.patterns(p + ".values", w.values, w.not_values, StringMatcher::principal);
          break;
        default:
          cc.strings =
              c.patterns(p + ".values", w.values, w.not_values, StringMatcher::fromPattern);
          break;
      }
      cr.needs_http = cr.needs_http || !isL4Attribute(attribute->kind);
      cr.when.push_back(std::move(cc));
    }
    out.rules.push_back(std::move(cr));
  }
  if (!c.status().ok()) {
    return c.status();
  }
  return out;
}

absl::Status checkServiceAccount(std::string_view value) {
  auto slash = value.find('/');
  if (slash == std::string_view::npos || !isDnsName(value.substr(0, slash), false) ||
      !isDnsName(value.substr(slash + 1), true)) {
    return absl::InvalidArgumentError(text::cat(
        "'", value, "' is not <namespace>/<serviceaccount> (Kubernetes names, no wildcards)"));
  }
  return absl::OkStatus();
}

std::optional<model::AuthorizationPolicy> refusedStandIn(const model::AuthorizationPolicy& policy,
                                                         std::string reason) {
  if (policy.action == model::PolicyAction::kAudit || policy.dry_run) {
    return std::nullopt;
  }
  model::AuthorizationPolicy out;
  out.key = policy.key;
  out.selector = policy.selector;
  out.root_namespace = policy.root_namespace;
  out.action = model::PolicyAction::kDeny;
  out.rules.emplace_back();  // an empty rule matches everything
  out.refused = std::move(reason);
  return out;
}

}  // namespace ferry::policy
