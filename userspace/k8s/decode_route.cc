// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// gateway.networking.k8s.io/v1 HTTPRoute attached to Services (GAMMA).
//
// Retries: Gateway API v1 has no stable retry field. Ferry reads the experimental shape of
// GEP-1731 (`rules[].retry: {attempts, codes, backoff}`); it may change with the GEP.
// Regular expressions (path, header and query matches) are RE2 syntax, as in Envoy, so that a
// match runs in linear time; one that does not compile is refused here.
#include <re2/re2.h>

#include <limits>

#include "absl/strings/ascii.h"
#include "k8s/decoders.h"
#include "policy/text.h"

namespace ferry::k8s::internal {
namespace {

std::string headerName(const Field& f) {
  std::string name = f.nonEmptyStr();
  for (char c : name) {
    if (!text::isTchar(c)) {
      f.fail(text::cat("'", name, "' is not a valid HTTP header name"));
    }
  }
  return name;
}

void checkRegex(const Field& f, const std::string& pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  RE2 re(pattern, options);
  if (!re.ok()) {
    f.fail(text::cat("bad regular expression '", pattern, "': ", re.error()));
  }
}

// Gateway API Duration: 1 to 4 groups of up to 5 digits with unit h, m, s or ms ("1h30m",
// "500ms"); returned in milliseconds.
uint32_t duration(const Field& f) {
  std::string text = f.nonEmptyStr();
  uint64_t total = 0;
  size_t i = 0;
  int groups = 0;
  while (i < text.size()) {
    size_t digits = 0;
    uint64_t n = 0;
    while (i < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) {
      n = n * 10 + static_cast<uint64_t>(text[i] - '0');
      ++i;
      ++digits;
    }
    uint64_t unit = 0;
    if (text.compare(i, 2, "ms") == 0) {
      unit = 1;
      i += 2;
    } else if (i < text.size() && text[i] == 's') {
      unit = 1000;
      ++i;
    } else if (i < text.size() && text[i] == 'm') {
      unit = 60'000;
      ++i;
    } else if (i < text.size() && text[i] == 'h') {
      unit = 3'600'000;
      ++i;
    }
    if (digits == 0 || digits > 5 || unit == 0 || ++groups > 4) {
      f.fail(text::cat("'", text, "' is not a Gateway API duration (e.g. 500ms, 10s, 1h30m)"));
    }
    total += n * unit;
  }
  if (total > UINT32_MAX) {
    f.fail(text::cat("'", text, "' is too long"));
  }
  return static_cast<uint32_t>(total);
}

model::HttpRouteMatch decodeMatch(const Field& f) {
  f.allowOnly({"path", "headers", "queryParams", "method"});
  model::HttpRouteMatch m;
  Field path = f["path"];
  if (path.present()) {
    path.allowOnly({"type", "value"});
    model::HttpPathMatch pm;
    std::string type = path["type"].strOr("PathPrefix");
    pm.value = path["value"].strOr("/");
    if (type == "Exact" || type == "PathPrefix") {
      pm.type = type == "Exact" ? model::HttpPathMatch::Type::kExact
                                : model::HttpPathMatch::Type::kPathPrefix;
      if (pm.value.empty() || pm.value[0] != '/') {
        path["value"].fail(text::cat("'", pm.value, "' must start with '/'"));
      }
      for (char c : pm.value) {
        if (c == '#' || c == '?' || static_cast<unsigned char>(c) <= 0x20) {
          path["value"].fail(text::cat("'", pm.value, "' may not hold '#', '?' or spaces"));
        }
      }
    } else if (type == "RegularExpression") {
      pm.type = model::HttpPathMatch::Type::kRegularExpression;
      checkRegex(path["value"], pm.value);
    } else {
      path["type"].fail(text::cat("'", type, "' is not Exact, PathPrefix or RegularExpression"));
    }
    m.path = pm;
  }
  for (const auto& h : f["headers"].list()) {
    h.allowOnly({"type", "name", "value"});
    model::HttpHeaderMatch hm;
    hm.name = headerName(h["name"]);
    if (!h["value"].present()) {
      h["value"].fail("required field is missing");
    }
    hm.value = h["value"].str();
    std::string type = h["type"].strOr("Exact");
    if (type == "RegularExpression") {
      hm.type = model::HttpHeaderMatch::Type::kRegularExpression;
      checkRegex(h["value"], hm.value);
    } else if (type != "Exact") {
      h["type"].fail(text::cat("'", type, "' is not Exact or RegularExpression"));
    }
    m.headers.push_back(std::move(hm));
  }
  for (const auto& q : f["queryParams"].list()) {
    q.allowOnly({"type", "name", "value"});
    model::HttpQueryMatch qm;
    qm.name = q["name"].nonEmptyStr();
    if (!q["value"].present()) {
      q["value"].fail("required field is missing");
    }
    qm.value = q["value"].str();
    std::string type = q["type"].strOr("Exact");
    if (type == "RegularExpression") {
      qm.type = model::HttpQueryMatch::Type::kRegularExpression;
      checkRegex(q["value"], qm.value);
    } else if (type != "Exact") {
      q["type"].fail(text::cat("'", type, "' is not Exact or RegularExpression"));
    }
    m.query_params.push_back(std::move(qm));
  }
  Field method = f["method"];
  if (method.present()) {
    static constexpr std::string_view kMethods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                                    "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    std::string value = method.str();
    bool known = false;
    for (auto k : kMethods) {
      known = known || k == value;
    }
    if (!known) {
      method.fail(text::cat("'", value,
                            "' is not GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE "
                            "or PATCH"));
    }
    m.method = value;
  }
  return m;
}

// A reference to a Service: the only backend kind Ferry routes to.
model::BackendRef serviceRef(const Field& f, const Meta& meta) {
  std::string group = f["group"].strOr("");
  std::string kind = f["kind"].strOr("Service");
  if (!(group.empty() || group == "core") || kind != "Service") {
    f["kind"].fail(text::cat("backend ", group.empty() ? "" : group + "/", kind,
                             " is not supported (only core Service)"));
  }
  model::BackendRef ref;
  ref.service.name = f["name"].nonEmptyStr();
  checkDnsLabel(f["name"], ref.service.name);
  ref.service.ns = f["namespace"].present() ? f["namespace"].nonEmptyStr() : meta.key.ns;
  checkDnsLabel(f["namespace"], ref.service.ns);
  // Gateway API requires a port when the backend is a Service.
  ref.port = decodePort(f["port"]);
  return ref;
}

// HTTPRequestMirrorFilter: a Service backendRef and the share of requests mirrored, as percent
// (0-100) or fraction (numerator/denominator, denominator 100 by default), never both.
void decodeMirror(const Field& m, const Meta& meta, model::HttpRouteRule& rule) {
  m.allowOnly({"backendRef", "percent", "fraction"});
  Field backend = m["backendRef"];
  if (!backend.present()) {
    backend.fail("required field is missing");
  }
  backend.allowOnly({"group", "kind", "name", "namespace", "port"});
  rule.mirror = serviceRef(backend, meta);
  Field percent = m["percent"];
  Field fraction = m["fraction"];
  if (percent.present() && fraction.present()) {
    fraction.fail("only one of percent and fraction may be set");
  }
  if (percent.present()) {
    rule.mirror_numerator = static_cast<uint32_t>(percent.integer(0, 100));
    rule.mirror_denominator = 100;
  }
  if (fraction.present()) {
    fraction.allowOnly({"numerator", "denominator"});
    if (!fraction["numerator"].present()) {
      fraction["numerator"].fail("required field is missing");
    }
    rule.mirror_denominator = fraction["denominator"].present()
                                  ? static_cast<uint32_t>(fraction["denominator"].integer(
                                        1, std::numeric_limits<int32_t>::max()))
                                  : 100;
    rule.mirror_numerator =
        static_cast<uint32_t>(fraction["numerator"].integer(0, rule.mirror_denominator));
  }
}

void decodeFilter(const Field& f, const Meta& meta, model::HttpRouteRule& rule) {
  f.allowOnly({"type", "requestHeaderModifier", "responseHeaderModifier", "requestMirror",
               "requestRedirect", "urlRewrite", "extensionRef", "cors"});
  std::string type = f["type"].nonEmptyStr();
  auto only = [&](std::string_view field) {
    for (auto other : {"requestHeaderModifier", "responseHeaderModifier", "requestMirror",
                       "requestRedirect", "urlRewrite", "extensionRef", "cors"}) {
      if (other != field && f[other].present()) {
        f[other].fail(text::cat("not allowed with type ", type));
      }
    }
    if (!f[field].present()) {
      f[field].fail(text::cat("required with type ", type));
    }
  };
  if (type == "RequestHeaderModifier") {
    only("requestHeaderModifier");
    if (rule.request_header_modifier) {
      f.fail("only one RequestHeaderModifier filter is allowed per rule");
    }
    Field m = f["requestHeaderModifier"];
    m.allowOnly({"set", "add", "remove"});
    model::HttpHeaderModifier mod;
    for (const auto& h : m["set"].list()) {
      h.allowOnly({"name", "value"});
      mod.set.emplace_back(headerName(h["name"]), h["value"].strOr(""));
    }
    for (const auto& h : m["add"].list()) {
      h.allowOnly({"name", "value"});
      mod.add.emplace_back(headerName(h["name"]), h["value"].strOr(""));
    }
    auto remove_items = m["remove"].list();
    for (const auto& r : remove_items) {
      mod.remove.push_back(headerName(r));
    }
    rule.request_header_modifier = std::move(mod);
  } else if (type == "RequestMirror") {
    only("requestMirror");
    if (rule.mirror) {
      f.fail("Ferry supports one RequestMirror filter per rule");
    }
    decodeMirror(f["requestMirror"], meta, rule);
  } else {
    f["type"].fail(text::cat("filter type '", type,
                             "' is not supported by Ferry (RequestHeaderModifier, "
                             "RequestMirror)"));
  }
}

model::HttpRouteRule decodeRule(const Field& f, const Meta& meta) {
  f.allowOnly(
      {"name", "matches", "filters", "backendRefs", "timeouts", "retry", "sessionPersistence"});
  if (f["sessionPersistence"].present()) {
    f["sessionPersistence"].fail("not supported by Ferry");
  }
  model::HttpRouteRule rule;
  for (const auto& m : f["matches"].list()) {
    rule.matches.push_back(decodeMatch(m));
  }
  if (rule.matches.empty()) {
    // Gateway API's default: match every request.
    rule.matches.push_back(model::HttpRouteMatch{model::HttpPathMatch{}, {}, {}, std::nullopt});
  }
  for (const auto& filter : f["filters"].list()) {
    decodeFilter(filter, meta, rule);
  }
  for (const auto& b : f["backendRefs"].list()) {
    b.allowOnly({"group", "kind", "name", "namespace", "port", "weight", "filters"});
    model::BackendRef ref = serviceRef(b, meta);
    if (b["weight"].present()) {
      ref.weight = static_cast<uint32_t>(b["weight"].integer(0, 1'000'000));
    }
    if (!b["filters"].list().empty()) {
      b["filters"].fail("per-backend filters are not supported by Ferry");
    }
    rule.backends.push_back(std::move(ref));
  }
  Field timeouts = f["timeouts"];
  if (timeouts.present()) {
    timeouts.allowOnly({"request", "backendRequest"});
    if (timeouts["request"].present()) {
      rule.request_timeout_ms = duration(timeouts["request"]);
    }
    if (timeouts["backendRequest"].present()) {
      rule.backend_request_timeout_ms = duration(timeouts["backendRequest"]);
    }
    // 0 disables a timeout; otherwise one try cannot outlast the whole request.
    if (rule.request_timeout_ms && rule.backend_request_timeout_ms &&
        *rule.request_timeout_ms != 0 &&
        (*rule.backend_request_timeout_ms == 0 ||
         *rule.backend_request_timeout_ms > *rule.request_timeout_ms)) {
      timeouts["backendRequest"].fail("must not be longer than request");
    }
  }
  Field retry = f["retry"];
  if (retry.present()) {
    retry.allowOnly({"attempts", "codes", "backoff"});
    model::HttpRetry r;
    if (retry["attempts"].present()) {
      r.attempts = static_cast<uint32_t>(retry["attempts"].integer(0, 100));
    }
    for (const auto& code : retry["codes"].list()) {
      r.codes.push_back(static_cast<uint32_t>(code.integer(400, 599)));
    }
    if (retry["backoff"].present()) {
      r.backoff_ms = duration(retry["backoff"]);
    }
    rule.retry = std::move(r);
  }
  return rule;
}

}  // namespace

model::HttpRoute decodeHttpRoute(const Field& root, const Meta& meta) {
  model::HttpRoute route;
  route.key = meta.key;
  route.annotations = meta.annotations;
  Field spec = root["spec"];
  if (!spec.present()) {
    spec.fail("required field is missing");
  }
  spec.allowOnly({"parentRefs", "hostnames", "rules"});
  for (const auto& p : spec["parentRefs"].list()) {
    p.allowOnly({"group", "kind", "namespace", "name", "sectionName", "port"});
    std::string kind = p["kind"].strOr("Gateway");
    std::string group = p["group"].strOr(kind == "Service" ? "" : "gateway.networking.k8s.io");
    std::string name = p["name"].nonEmptyStr();
    std::string ns = p["namespace"].present() ? p["namespace"].nonEmptyStr() : meta.key.ns;
    uint16_t port = p["port"].present() ? decodePort(p["port"]) : 0;
    // Routes may also attach to Gateways; those parents are another implementation's.
    if (kind == "Service" && (group.empty() || group == "core")) {
      checkDnsLabel(p["name"], name);
      checkDnsLabel(p["namespace"], ns);
      route.parent_services.push_back(model::ObjectKey{ns, name});
      route.parent_ports.push_back(port);
    }
  }
  for (const auto& h : spec["hostnames"].list()) {
    std::string host = h.nonEmptyStr();
    // GAMMA ignores hostnames, but a malformed one still means a broken manifest.
    checkDnsSubdomain(h, host.rfind("*.", 0) == 0 ? host.substr(2) : host);
  }
  for (const auto& rule : spec["rules"].list()) {
    route.rules.push_back(decodeRule(rule, meta));
  }
  return route;
}

}  // namespace ferry::k8s::internal
