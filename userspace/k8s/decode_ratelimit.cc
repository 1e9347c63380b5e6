// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// security.ferry.dev/v1alpha1 RateLimitPolicy, shaped after Linkerd's HTTPLocalRateLimitPolicy
// (total, identity, overrides by client ServiceAccount) with a Service or a workload selector as
// target and an optional burst per limit.
#include <set>

#include "k8s/decoders.h"
#include "policy/text.h"

namespace ferry::k8s::internal {
namespace {

model::RateLimit decodeLimit(const Field& f, std::initializer_list<std::string_view> allowed) {
  f.allowOnly(allowed);
  Field rps = f["requestsPerSecond"];
  if (!rps.present()) {
    rps.fail("required field is missing");
  }
  model::RateLimit limit;
  limit.requests_per_second = static_cast<uint32_t>(rps.integer(1, model::kMaxRequestsPerSecond));
  Field burst = f["burst"];
  limit.burst = burst.present()
                    ? static_cast<uint32_t>(burst.integer(1, model::kMaxRequestsPerSecond))
                    : limit.requests_per_second;
  return limit;
}

std::optional<model::RateLimit> optionalLimit(const Field& f) {
  if (!f.present()) {
    return std::nullopt;
  }
  return decodeLimit(f, {"requestsPerSecond", "burst"});
}

// The target: a Service of the policy's namespace (port optional) or a workload selector.
void decodeTarget(const Field& spec, model::RateLimitPolicy& p) {
  Field target = spec["targetRef"];
  Field selector = spec["selector"];
  if (target.present() == selector.present()) {
    spec.fail("needs exactly one of targetRef (a Service) and selector");
  }
  if (target.present()) {
    target.allowOnly({"group", "kind", "name", "port"});
    std::string group = target["group"].strOr("");
    if (!group.empty() && group != "core") {
      target["group"].fail(text::cat("'", group, "' is not the core group (\"\")"));
    }
    Field kind = target["kind"];
    if (kind.nonEmptyStr() != "Service") {
      kind.fail(text::cat("'", kind.str(), "' is not Service (use selector for pods)"));
    }
    Field name = target["name"];
    p.target_service = name.nonEmptyStr();
    checkDnsLabel(name, p.target_service);
    if (target["port"].present()) {
      p.service_port = decodePort(target["port"]);
    }
    if (spec["ports"].present()) {
      spec["ports"].fail("only with selector (targetRef.port names a Service port)");
    }
    return;
  }
  p.selector = decodeWorkloadSelector(selector);
  std::set<uint16_t> seen;
  for (const Field& port : spec["ports"].list()) {
    uint16_t value = decodePort(port);
    if (!seen.insert(value).second) {
      port.fail("duplicate port");
    }
    p.ports.push_back(value);
  }
}

void checkNotAboveTotal(const Field& f, const model::RateLimit& limit,
                        const std::optional<model::RateLimit>& total) {
  if (total && limit.requests_per_second > total->requests_per_second) {
    f.fail(text::cat(limit.requests_per_second, " is above total.requestsPerSecond (",
                     total->requests_per_second, ")"));
  }
}

model::RateLimitOverride decodeOverride(const Field& f, const Meta& meta,
                                        std::set<model::ObjectKey>& clients) {
  model::RateLimitOverride o;
  o.limit = decodeLimit(f, {"requestsPerSecond", "burst", "clientRefs"});
  auto refs = f["clientRefs"].list();
  if (refs.empty()) {
    f["clientRefs"].fail("needs at least one client");
  }
  for (const Field& ref : refs) {
    ref.allowOnly({"group", "kind", "name", "namespace"});
    if (!ref["group"].strOr("").empty()) {
      ref["group"].fail("must be the core group (\"\")");
    }
    Field kind = ref["kind"];
    if (kind.nonEmptyStr() != "ServiceAccount") {
      kind.fail(text::cat("'", kind.str(), "' is not ServiceAccount"));
    }
    model::ObjectKey sa;
    sa.name = ref["name"].nonEmptyStr();
    checkDnsSubdomain(ref["name"], sa.name);
    sa.ns = ref["namespace"].strOr(meta.key.ns);
    checkDnsLabel(ref["namespace"], sa.ns);
    if (!clients.insert(sa).second) {
      ref.fail(text::cat("ServiceAccount ", sa.str(), " is named by more than one override"));
    }
    o.service_accounts.push_back(std::move(sa));
  }
  return o;
}

model::RateLimitPolicy everyWorkload(model::RateLimitPolicy p) {
  p.target_service.clear();
  p.service_port = 0;
  p.selector.reset();
  p.ports.clear();
  return p;
}

}  // namespace

model::RateLimitPolicy decodeRateLimitPolicy(const Field& root, const Meta& meta) {
  model::RateLimitPolicy p;
  p.key = meta.key;
  Field spec = root["spec"];
  if (!spec.present()) {
    spec.fail("required field is missing");
  }
  spec.allowOnly({"targetRef", "selector", "ports", "total", "identity", "overrides"});
  decodeTarget(spec, p);
  p.total = optionalLimit(spec["total"]);
  p.identity = optionalLimit(spec["identity"]);
  if (p.identity) {
    checkNotAboveTotal(spec["identity"]["requestsPerSecond"], *p.identity, p.total);
  }
  std::set<model::ObjectKey> clients;
  auto overrides = spec["overrides"].list();
  for (const Field& o : overrides) {
    p.overrides.push_back(decodeOverride(o, meta, clients));
    checkNotAboveTotal(o["requestsPerSecond"], p.overrides.back().limit, p.total);
  }
  if (!p.total && !p.identity && p.overrides.empty()) {
    spec.fail("sets no limit (total, identity or overrides)");
  }
  return p;
}

std::optional<model::RateLimitPolicy> refusedRateLimitPolicy(const YAML::Node& node,
                                                             const model::ObjectKey& key,
                                                             std::string reason) {
  model::RateLimitPolicy p;
  p.key = key;
  p.refused = std::move(reason);
  p.total = model::RateLimit{0, 0};
  // The target as far as it reads; an unreadable one is every workload of the namespace, so
  // that the policy's own target is surely limited (fail closed).
  try {
    Field spec = Field(node, "")["spec"];
    spec.expectMap();
    Field target = spec["targetRef"];
    if (target.present()) {
      p.target_service = target["name"].nonEmptyStr();
      if (target["port"].present()) {
        p.service_port = decodePort(target["port"]);
      }
    } else {
      p.selector = decodeWorkloadSelector(spec["selector"]);
      for (const Field& port : spec["ports"].list()) {
        p.ports.push_back(decodePort(port));
      }
    }
  } catch (const DecodeError&) {
    p = everyWorkload(std::move(p));
  } catch (const YAML::Exception&) {
    p = everyWorkload(std::move(p));
  }
  return p;
}

}  // namespace ferry::k8s::internal
