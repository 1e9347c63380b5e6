// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "cli/check.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/table.h"
#include "http/authority.h"
#include "http/path.h"
#include "policy/engine.h"
#include "policy/protocol.h"

namespace ferry::cli {
namespace {

std::string reasonName(policy::Decision::Reason r) {
  switch (r) {
    case policy::Decision::Reason::kDenyMatched:
      return "deny_matched";
    case policy::Decision::Reason::kNoAllowPolicy:
      return "no_allow_policy";
    case policy::Decision::Reason::kAllowMatched:
      return "allow_matched";
    case policy::Decision::Reason::kNoAllowMatched:
      return "no_allow_matched";
    case policy::Decision::Reason::kTunnelNotNamed:
      return "tunnel_not_named";
  }
  return "?";
}

absl::StatusOr<const model::Workload*> pod(const Inventory& inv, const model::ObjectKey& key,
                                           std::string_view role) {
  if (const model::Workload* w = inv.findPod(key)) {
    return w;
  }
  std::vector<std::string> known;
  for (const auto& w : inv.workloads) {
    known.push_back(w.key.str());
  }
  return absl::NotFoundError(
      absl::StrCat("unknown ", std::string(role), " pod ", key.str(), "; pods in the manifests: ",
                   known.empty() ? std::string("none") : absl::StrJoin(known, ", ")));
}

// The port a client reaches the pod on: the target port of the Services that select it, when
// they agree on one.
absl::StatusOr<uint16_t> destinationPort(const Inventory& inv, const model::Workload& dest) {
  std::set<uint16_t> ports;
  for (const model::Service* s : inv.servicesSelecting(dest)) {
    for (const auto& p : s->ports) {
      if (p.target_port != 0 || p.target_port_name.empty()) {
        ports.insert(p.target_port != 0 ? p.target_port : p.port);
      }
    }
  }
  if (ports.size() == 1) {
    return *ports.begin();
  }
  if (ports.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no Service with a numeric port selects ", dest.key.str(), ": pass --port"));
  }
  return absl::InvalidArgumentError(absl::StrCat(dest.key.str(), " listens on ports ",
                                                 absl::StrJoin(ports, ", "),
                                                 " behind its Services: pass --port"));
}

}  // namespace

absl::StatusOr<CheckReport> runCheck(const Inventory& inv, const CheckArgs& args) {
  auto src = pod(inv, args.source, "source");
  if (!src.ok()) {
    return src.status();
  }
  auto dst = pod(inv, args.destination, "destination");
  if (!dst.ok()) {
    return dst.status();
  }
  const model::Workload& s = **src;
  const model::Workload& d = **dst;

  CheckReport r;
  r.source = s.key.str();
  r.destination = d.key.str();
  if (!args.plaintext && s.mesh_enabled) {
    r.source_principal =
        absl::StrCat("spiffe://", args.trust_domain, "/ns/", s.key.ns, "/sa/", s.service_account);
  }
  r.source_ip = s.ips.empty() ? "" : s.ips.front();
  r.destination_ip = d.ips.empty() ? "" : d.ips.front();
  if (args.port) {
    r.port = *args.port;
  } else {
    auto port = destinationPort(inv, d);
    if (!port.ok()) {
      return port.status();
    }
    r.port = *port;
  }

  r.http_port = policy::isHttpPort(inv.services, d, r.port);
  policy::Request request{
      .source_principal = r.source_principal,
      .source_ip = net::IpAddress::parse(r.source_ip),
      .destination_ip = net::IpAddress::parse(r.destination_ip),
      .destination_port = r.port,
      .http_port = r.http_port,
  };
  auto snapshot = policy::PolicySnapshot::build(inv.policies);
  for (const auto& e : snapshot->errors()) {
    r.warnings.push_back(e + " (fails closed)");
  }
  for (const auto& p : inv.policies) {
    if (!p.refused.empty()) {
      r.warnings.push_back(absl::StrCat("AuthorizationPolicy ", p.key.str(), " was refused (",
                                        p.refused, "): it denies what it selects until fixed"));
    }
  }
  const policy::WorkloadPolicies policies = snapshot->forWorkload(d);
  if (args.method && args.path && !r.http_port) {
    r.warnings.push_back(absl::StrCat("port ", r.port,
                                      " is not an HTTP port (no Service names it http): decided "
                                      "for the TCP connection, as the data path does"));
  }
  policy::HttpRequest http;
  policy::RequestAuth auth;
  // On an HTTP port the agent decides the connection first; a refused connection carries no
  // request, so the request is asked only once the connection is admitted.
  if (args.method && args.path && r.http_port && policies.evaluate(request).allowed) {
    r.http = true;
    r.method = *args.method;
    r.path = *args.path;
    if (r.method != "CONNECT") {
      // The path the data path matches: normalized once, as the agent's HTTP filters do.
      auto target = http::parseRequestTarget(r.method, r.path, http::PathOptions{});
      if (!target.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "path ", r.path, ": ", target.status().message(), " (the agent answers 400)"));
      }
      r.path = target->path;
    }
    if (args.host) {
      r.host = *args.host;
    } else if (auto svcs = inv.servicesSelecting(d); !svcs.empty()) {
      r.host = svcs.front()->hostname();
    }
    // The host the data path matches: normalized as the agent's HTTP filters do.
    if (!r.host.empty()) {
      auto host = http::normalizeAuthority(r.host);
      if (!host.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "host ", r.host, ": ", host.status().message(), " (the agent answers 400)"));
      }
      r.host = *std::move(host);
    }
    http.method = r.method;
    http.path = r.path;
    http.host = r.host;
    // What the agent sees for CONNECT (an upgrade needs its Upgrade field, which is not asked).
    http.tunnel = r.method == "CONNECT";
    for (const auto& [name, value] : args.headers) {
      http.headers.emplace_back(name, value);
    }
    request.http = &http;
    if (args.request_principal) {
      r.request_principal = *args.request_principal;
      auth.principal = r.request_principal;
      auth.presenter = args.presenter;
      auth.audiences.assign(args.audiences.begin(), args.audiences.end());
      for (const auto& [name, value] : args.claims) {
        auth.claims.emplace_back(name, value);
      }
      request.auth = &auth;
    }
  }

  const policy::Explanation ex = policies.explain(request);

  r.allowed = ex.decision.allowed;
  r.reason = reasonName(ex.decision.reason);
  r.summary = ex.decision.str();
  if (ex.decision.rule.policy != nullptr) {
    r.decided_by = ex.decision.rule.policy->key.str();
    r.decided_by_rule = ex.decision.rule.rule;
  }
  if (ex.decision.dry_run) {
    r.dry_run_allowed = ex.decision.dry_run->allowed;
  }
  for (const auto& a : ex.decision.audits) {
    r.audits.push_back(a.str());
  }
  for (const auto& p : ex.policies) {
    CheckReport::Policy out{.name = p.policy.str(),
                            .action = std::string(model::actionName(p.action)),
                            .dry_run = p.dry_run};
    for (const auto& rule : p.rules) {
      out.rules.push_back({.rule = rule.rule,
                           .matched = rule.matched,
                           .skipped_at_l4 = rule.skipped_at_l4,
                           .why = rule.why});
    }
    r.policies.push_back(std::move(out));
  }
  return r;
}

std::string checkTable(const CheckReport& r) {
  std::string request =
      r.http
          ? absl::StrCat("HTTP ", r.method, " ", r.path, r.host.empty() ? "" : " host ", r.host,
                         r.request_principal.empty() ? " (no JWT)" : " JWT ", r.request_principal)
      : r.http_port ? std::string("connection to an HTTP port (requests are decided one by one)")
                    : std::string("TCP connection (L4)");
  std::string out = renderTable(
      {"", ""},
      {{"SOURCE", absl::StrCat(r.source, "  ",
                               r.source_principal.empty() ? "(plaintext)" : r.source_principal,
                               "  ", r.source_ip)},
       {"DESTINATION", absl::StrCat(r.destination, "  ", r.destination_ip, " port ", r.port)},
       {"REQUEST", request},
       {"DECISION", absl::StrCat(r.allowed ? "ALLOW" : "DENY", ": ", r.summary)}});
  // The empty header row renderTable prints first is noise here.
  out.erase(0, out.find('\n') + 1);
  out += "\n";
  if (r.policies.empty()) {
    out += "no AuthorizationPolicy selects " + r.destination + "\n";
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const auto& p : r.policies) {
      if (p.rules.empty()) {
        rows.push_back({p.name, p.action, "-", "no", "no rules: matches nothing"});
      }
      for (const auto& rule : p.rules) {
        rows.push_back(
            {p.name, p.dry_run ? p.action + " (dry-run)" : p.action, std::to_string(rule.rule),
             rule.skipped_at_l4 ? "skipped (L4)" : (rule.matched ? "yes" : "no"), rule.why});
      }
    }
    out += renderTable({"POLICY", "ACTION", "RULE", "MATCH", "WHY"}, rows);
  }
  for (const auto& w : r.warnings) {
    out += "warning: " + w + "\n";
  }
  return out;
}

nlohmann::json checkJson(const CheckReport& r) {
  using nlohmann::json;
  json policies = json::array();
  for (const auto& p : r.policies) {
    json rules = json::array();
    for (const auto& rule : p.rules) {
      rules.push_back({{"rule", rule.rule},
                       {"matched", rule.matched},
                       {"skipped_at_l4", rule.skipped_at_l4},
                       {"why", rule.why}});
    }
    policies.push_back(
        {{"name", p.name}, {"action", p.action}, {"dry_run", p.dry_run}, {"rules", rules}});
  }
  json request = {{"protocol", r.http ? "http" : "tcp"},
                  {"port", r.port},
                  {"http_port", r.http_port},
                  {"plaintext", r.source_principal.empty()}};
  if (r.http) {
    request["method"] = r.method;
    request["path"] = r.path;
    request["host"] = r.host;
    request["request_principal"] =
        r.request_principal.empty() ? json(nullptr) : json(r.request_principal);
  }
  return {
      {"source", {{"pod", r.source}, {"principal", r.source_principal}, {"ip", r.source_ip}}},
      {"destination", {{"pod", r.destination}, {"ip", r.destination_ip}}},
      {"request", request},
      {"allowed", r.allowed},
      {"reason", r.reason},
      {"summary", r.summary},
      {"policy", r.decided_by.empty() ? json(nullptr) : json(r.decided_by)},
      {"rule", r.decided_by_rule < 0 ? json(nullptr) : json(r.decided_by_rule)},
      {"audits", r.audits},
      {"dry_run_allowed", r.dry_run_allowed ? json(*r.dry_run_allowed) : json(nullptr)},
      {"policies", policies},
      {"warnings", r.warnings},
  };
}

}  // namespace ferry::cli
