// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "cli/listing.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/table.h"

namespace ferry::cli {
namespace {

using nlohmann::json;

std::string labelsText(const model::Labels& labels) {
  return absl::StrJoin(labels, ",", absl::PairFormatter("="));
}

std::string portText(const model::ServicePort& p) {
  std::string target = p.target_port != 0 ? std::to_string(p.target_port) : p.target_port_name;
  return absl::StrCat(p.port, target.empty() ? "" : "->", target, "/", p.protocol,
                      p.app_protocol.empty() ? "" : absl::StrCat(" (", p.app_protocol, ")"));
}

std::string policyScope(const model::AuthorizationPolicy& p) {
  if (p.root_namespace) {
    return p.selector ? absl::StrCat("mesh-wide: ", labelsText(*p.selector)) : "mesh-wide";
  }
  return p.selector ? labelsText(*p.selector) : "whole namespace";
}

}  // namespace

std::string workloadsTable(const Inventory& inv) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : inv.workloads) {
    rows.push_back({w.key.ns, w.key.name, w.service_account, w.node, absl::StrJoin(w.ips, ","),
                    w.mesh_enabled ? "yes" : "no", labelsText(w.labels)});
  }
  return renderTable({"NAMESPACE", "NAME", "SERVICE ACCOUNT", "NODE", "IPS", "MESH", "LABELS"},
                     rows);
}

json workloadsJson(const Inventory& inv) {
  json out = json::array();
  for (const auto& w : inv.workloads) {
    out.push_back({{"namespace", w.key.ns},
                   {"name", w.key.name},
                   {"uid", w.uid},
                   {"service_account", w.service_account},
                   {"node", w.node},
                   {"ips", w.ips},
                   {"mesh", w.mesh_enabled},
                   {"labels", w.labels}});
  }
  return out;
}

std::string servicesTable(const Inventory& inv) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : inv.services) {
    std::vector<std::string> ports;
    for (const auto& p : s.ports) {
      ports.push_back(portText(p));
    }
    rows.push_back({s.key.ns, s.key.name, absl::StrJoin(s.vips, ","), absl::StrJoin(ports, ", "),
                    labelsText(s.selector)});
  }
  return renderTable({"NAMESPACE", "NAME", "VIPS", "PORTS", "SELECTOR"}, rows);
}

json servicesJson(const Inventory& inv) {
  json out = json::array();
  for (const auto& s : inv.services) {
    json ports = json::array();
    for (const auto& p : s.ports) {
      ports.push_back({{"name", p.name},
                       {"port", p.port},
                       {"target_port", p.target_port},
                       {"target_port_name", p.target_port_name},
                       {"protocol", p.protocol},
                       {"app_protocol", p.app_protocol}});
    }
    out.push_back({{"namespace", s.key.ns},
                   {"name", s.key.name},
                   {"hostname", s.hostname()},
                   {"vips", s.vips},
                   {"ports", ports},
                   {"selector", s.selector}});
  }
  return out;
}

std::string policiesTable(const Inventory& inv) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : inv.policies) {
    rows.push_back({p.key.ns, p.key.name, std::string(model::actionName(p.action)), policyScope(p),
                    std::to_string(p.rules.size())});
  }
  return renderTable({"NAMESPACE", "NAME", "ACTION", "SELECTS", "RULES"}, rows);
}

namespace {

// "inline", the jwksUri, or why its tokens are refused.
std::string keysOf(const model::JwtRule& r) {
  if (!r.jwks_error.empty()) {
    return absl::StrCat("refused: ", r.jwks_error);
  }
  return r.jwks_uri.empty() ? "inline" : r.jwks_uri;
}

std::string raScope(const model::RequestAuthentication& ra) {
  return ra.selector ? labelsText(*ra.selector) : "whole namespace";
}

}  // namespace

std::string requestAuthenticationsTable(const Inventory& inv) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& ra : inv.request_authentications) {
    for (const auto& r : ra.jwt_rules) {
      rows.push_back({ra.key.ns, ra.key.name, raScope(ra), r.issuer, keysOf(r)});
    }
    if (ra.jwt_rules.empty()) {
      rows.push_back({ra.key.ns, ra.key.name, raScope(ra), "(none)", ""});
    }
  }
  return renderTable({"NAMESPACE", "NAME", "SELECTS", "ISSUER", "KEYS"}, rows);
}

json requestAuthenticationsJson(const Inventory& inv) {
  json out = json::array();
  for (const auto& ra : inv.request_authentications) {
    json rules = json::array();
    for (const auto& r : ra.jwt_rules) {
      rules.push_back({{"issuer", r.issuer}, {"audiences", r.audiences}, {"keys", keysOf(r)}});
    }
    out.push_back({{"namespace", ra.key.ns},
                   {"name", ra.key.name},
                   {"selector", ra.selector ? json(*ra.selector) : json(nullptr)},
                   {"jwt_rules", rules}});
  }
  return out;
}

json policiesJson(const Inventory& inv) {
  json out = json::array();
  for (const auto& p : inv.policies) {
    out.push_back({{"namespace", p.key.ns},
                   {"name", p.key.name},
                   {"action", model::actionName(p.action)},
                   {"mesh_wide", p.root_namespace},
                   {"selector", p.selector ? json(*p.selector) : json(nullptr)},
                   {"rules", p.rules.size()}});
  }
  return out;
}

namespace {

std::string limitText(const std::optional<model::RateLimit>& l) {
  return l ? absl::StrCat(l->requests_per_second, "/s burst ", l->burst) : "-";
}

json limitJson(const std::optional<model::RateLimit>& l) {
  return l ? json{{"requests_per_second", l->requests_per_second}, {"burst", l->burst}}
           : json(nullptr);
}

std::string rateLimitTarget(const model::RateLimitPolicy& p) {
  if (!p.target_service.empty()) {
    return absl::StrCat("Service ", p.target_service,
                        p.service_port != 0 ? absl::StrCat(":", p.service_port) : "");
  }
  std::string ports = p.ports.empty() ? "" : absl::StrCat(" ports ", absl::StrJoin(p.ports, ","));
  return (p.selector ? labelsText(*p.selector) : std::string("*")) + ports;
}

}  // namespace

std::string rateLimitsTable(const Inventory& inv) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : inv.rate_limits) {
    rows.push_back({p.key.ns, p.key.name, rateLimitTarget(p), limitText(p.total),
                    limitText(p.identity), std::to_string(p.overrides.size()),
                    p.refused.empty() ? "-" : "refused (limited to zero): " + p.refused});
  }
  return renderTable({"NAMESPACE", "NAME", "TARGET", "TOTAL", "IDENTITY", "OVERRIDES", "STATUS"},
                     rows);
}

json rateLimitsJson(const Inventory& inv) {
  json out = json::array();
  for (const auto& p : inv.rate_limits) {
    json overrides = json::array();
    for (const auto& o : p.overrides) {
      json clients = json::array();
      for (const auto& sa : o.service_accounts) {
        clients.push_back(sa.str());
      }
      overrides.push_back({{"limit", limitJson(o.limit)}, {"service_accounts", clients}});
    }
    out.push_back({{"namespace", p.key.ns},
                   {"name", p.key.name},
                   {"target", rateLimitTarget(p)},
                   {"total", limitJson(p.total)},
                   {"identity", limitJson(p.identity)},
                   {"overrides", overrides},
                   {"refused", p.refused.empty() ? json(nullptr) : json(p.refused)}});
  }
  return out;
}

}  // namespace ferry::cli
