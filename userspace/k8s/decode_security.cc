// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// security.ferry.dev/v1alpha1: AuthorizationPolicy and PeerAuthentication, with Istio's field
// names. Values are checked with the policy engine's own parsers, so what is admitted here is
// exactly what the engine compiles.
#include "k8s/decoders.h"
#include "net/ip.h"
#include "policy/attributes.h"
#include "policy/compiled.h"
#include "policy/string_match.h"
#include "policy/text.h"

namespace ferry::k8s::internal {
namespace {

using ValueCheck = absl::Status (*)(std::string_view);

absl::Status checkCidr(std::string_view v) {
  return net::Cidr::parse(v).status();
}
absl::Status checkPortValue(std::string_view v) {
  return policy::parsePort(v).status();
}

// A list of strings where each item passes `check`; the error points at the item.
std::vector<std::string> values(const Field& f, ValueCheck check) {
  std::vector<std::string> out = f.strList();
  auto items = f.list();
  for (size_t i = 0; i < out.size(); ++i) {
    items[i].check(check(out[i]));
  }
  return out;
}

model::Source decodeSource(const Field& f) {
  // `source: {}` is accepted: it matches nothing, as in ztunnel (policy/compiled.h).
  f.allowOnly({"principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals",
               "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks", "remoteIpBlocks",
               "notRemoteIpBlocks", "serviceAccounts", "notServiceAccounts"});
  model::Source s;
  s.principals = values(f["principals"], policy::checkPattern);
  s.not_principals = values(f["notPrincipals"], policy::checkPattern);
  s.request_principals = values(f["requestPrincipals"], policy::checkPattern);
  s.not_request_principals = values(f["notRequestPrincipals"], policy::checkPattern);
  s.namespaces = values(f["namespaces"], policy::checkPattern);
  s.not_namespaces = values(f["notNamespaces"], policy::checkPattern);
  s.ip_blocks = values(f["ipBlocks"], checkCidr);
  s.not_ip_blocks = values(f["notIpBlocks"], checkCidr);
  s.remote_ip_blocks = values(f["remoteIpBlocks"], checkCidr);
  s.not_remote_ip_blocks = values(f["notRemoteIpBlocks"], checkCidr);
  s.service_accounts = values(f["serviceAccounts"], policy::checkServiceAccount);
  s.not_service_accounts = values(f["notServiceAccounts"], policy::checkServiceAccount);
  return s;
}

model::Operation decodeOperation(const Field& f) {
  f.allowOnly(
      {"hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths"});
  if (f.node().size() == 0) {
    f.fail("must set at least one field");
  }
  model::Operation op;
  op.hosts = values(f["hosts"], policy::checkPattern);
  op.not_hosts = values(f["notHosts"], policy::checkPattern);
  op.ports = values(f["ports"], checkPortValue);
  op.not_ports = values(f["notPorts"], checkPortValue);
  op.methods = values(f["methods"], policy::checkMethod);
  op.not_methods = values(f["notMethods"], policy::checkMethod);
  op.paths = values(f["paths"], policy::checkPath);
  op.not_paths = values(f["notPaths"], policy::checkPath);
  return op;
}

model::Condition decodeCondition(const Field& f) {
  f.allowOnly({"key", "values", "notValues"});
  model::Condition c;
  Field key = f["key"];
  c.key = key.nonEmptyStr();
  auto attribute = policy::parseConditionKey(c.key);
  key.check(attribute.status());
  c.values = f["values"].strList();
  c.not_values = f["notValues"].strList();
  if (c.values.empty() && c.not_values.empty()) {
    f.fail("needs values or notValues");
  }
  auto check_all = [&](const Field& list, const std::vector<std::string>& vs) {
    auto items = list.list();
    for (size_t i = 0; i < vs.size(); ++i) {
      items[i].check(policy::checkConditionValue(*attribute, vs[i]));
    }
  };
  check_all(f["values"], c.values);
  check_all(f["notValues"], c.not_values);
  return c;
}

model::Rule decodeRule(const Field& f) {
  f.allowOnly({"from", "to", "when"});
  model::Rule rule;
  for (const auto& from : f["from"].list()) {
    from.allowOnly({"source"});
    if (!from["source"].present()) {
      from["source"].fail("required field is missing");
    }
    rule.from.push_back(decodeSource(from["source"]));
  }
  for (const auto& to : f["to"].list()) {
    to.allowOnly({"operation"});
    if (!to["operation"].present()) {
      to["operation"].fail("required field is missing");
    }
    rule.to.push_back(decodeOperation(to["operation"]));
  }
  for (const auto& when : f["when"].list()) {
    rule.when.push_back(decodeCondition(when));
  }
  return rule;
}

model::MtlsMode decodeMode(const Field& f) {
  std::string mode = f.strOr("UNSET");
  if (mode == "UNSET") {
    return model::MtlsMode::kUnset;
  }
  if (mode == "STRICT") {
    return model::MtlsMode::kStrict;
  }
  if (mode == "PERMISSIVE") {
    return model::MtlsMode::kPermissive;
  }
  if (mode == "DISABLE") {
    return model::MtlsMode::kDisable;
  }
  f.fail(text::cat("'", mode, "' is not UNSET, STRICT, PERMISSIVE or DISABLE"));
}

// Istio's annotation: "true" evaluates the policy without enforcing it.
constexpr std::string_view kDryRunAnnotation = "istio.io/dry-run";

bool decodeDryRun(const Meta& meta) {
  auto it = meta.annotations.find(std::string(kDryRunAnnotation));
  if (it == meta.annotations.end() || it->second == "false") {
    return false;
  }
  if (it->second != "true") {
    throw DecodeError(text::cat("metadata.annotations[", kDryRunAnnotation, "]: '", it->second,
                                "' is not \"true\" or \"false\""));
  }
  return true;
}

model::PolicyAction decodeAction(const Field& action) {
  std::string a = action.strOr("ALLOW");
  if (a == "ALLOW") {
    return model::PolicyAction::kAllow;
  }
  if (a == "DENY") {
    return model::PolicyAction::kDeny;
  }
  if (a == "AUDIT") {
    return model::PolicyAction::kAudit;
  }
  if (a == "CUSTOM") {
    action.fail("CUSTOM is not supported by Ferry (ALLOW, DENY or AUDIT)");
  }
  action.fail(text::cat("'", a, "' is not ALLOW, DENY or AUDIT"));
}

}  // namespace

model::AuthorizationPolicy decodeAuthorizationPolicy(const Field& root, const Meta& meta,
                                                     const DecodeOptions& options) {
  model::AuthorizationPolicy p;
  p.key = meta.key;
  p.root_namespace = meta.key.ns == options.root_namespace;
  p.dry_run = decodeDryRun(meta);
  Field spec = root["spec"];
  if (!spec.present()) {
    // Istio reads a missing spec like `spec: {}`: an ALLOW policy with no rules (deny all).
    return p;
  }
  spec.allowOnly({"selector", "action", "rules", "provider", "targetRef", "targetRefs"});
  if (spec["provider"].present()) {
    spec["provider"].fail("CUSTOM providers are not supported by Ferry");
  }
  for (const char* field : {"targetRef", "targetRefs"}) {
    if (spec[field].present()) {
      spec[field].fail("not supported by Ferry (no waypoints); use selector");
    }
  }
  p.selector = decodeWorkloadSelector(spec["selector"]);
  p.action = decodeAction(spec["action"]);
  for (const auto& rule : spec["rules"].list()) {
    p.rules.push_back(decodeRule(rule));
  }
  // Admission asks the engine itself: what is admitted is exactly what the agents compile.
  spec.check(policy::compile(p).status());
  return p;
}

std::optional<model::AuthorizationPolicy> refusedAuthorizationPolicy(const YAML::Node& node,
                                                                     const model::ObjectKey& key,
                                                                     const DecodeOptions& options,
                                                                     std::string reason) {
  model::AuthorizationPolicy p;
  p.key = key;
  p.root_namespace = key.ns == options.root_namespace;
  // Each part as far as it reads: an unreadable selector selects every workload of the
  // namespace, an unreadable action or dry-run flag counts as enforcing.
  auto attempt = [](auto read) {
    try {
      read();
    } catch (const DecodeError&) {
    } catch (const YAML::Exception&) {
    }
  };
  Field root(node, "");
  attempt([&] {
    Field annotations = root["metadata"]["annotations"];
    if (annotations.present()) {
      Meta meta;
      meta.annotations = annotations.strMap();
      p.dry_run = decodeDryRun(meta);
    }
  });
  attempt([&] {
    Field spec = root["spec"];
    if (spec.present()) {
      spec.expectMap();
      p.selector = decodeWorkloadSelector(spec["selector"]);
    }
  });
  attempt([&] {
    Field spec = root["spec"];
    if (spec.present()) {
      p.action = decodeAction(spec["action"]);
    }
  });
  return policy::refusedStandIn(p, std::move(reason));
}

model::PeerAuthentication decodePeerAuthentication(const Field& root, const Meta& meta) {
  model::PeerAuthentication pa;
  pa.key = meta.key;
  Field spec = root["spec"];
  if (!spec.present()) {
    return pa;
  }
  spec.allowOnly({"selector", "mtls", "portLevelMtls"});
  pa.selector = decodeWorkloadSelector(spec["selector"]);
  Field mtls = spec["mtls"];
  if (mtls.present()) {
    mtls.allowOnly({"mode"});
    pa.mode = decodeMode(mtls["mode"]);
  }
  Field ports = spec["portLevelMtls"];
  if (ports.present()) {
    ports.expectMap();
    if (!pa.selector) {
      ports.fail("needs a selector (Istio applies port-level modes to selected workloads only)");
    }
    for (const auto& kv : ports.node()) {
      std::string port_text = kv.first.IsScalar() ? kv.first.Scalar() : "";
      Field entry(kv.second, text::cat(ports.path(), "[", port_text, "]"));
      auto port = policy::parsePort(port_text);
      entry.check(port.status());
      entry.allowOnly({"mode"});
      if (!pa.port_modes.emplace(*port, decodeMode(entry["mode"])).second) {
        entry.fail("duplicate port");
      }
    }
  }
  return pa;
}

}  // namespace ferry::k8s::internal
