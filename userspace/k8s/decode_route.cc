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
#include "absl/strings/str_cat.h"
#include "k8s/decoders.h"
#include "policy/text.h"

namespace ferry::k8s::internal {

void checkRegex(const Field& f, const std::string& pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  RE2 re(pattern, options);
  if (!re.ok()) {
    f.fail(text::cat("bad regular expression '", pattern, "': ", re.error()));
  }
}

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

}  // namespace

model::HttpHeaderMatch decodeHeaderMatch(const Field& h) {
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
  return hm;
}

namespace {

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
    m.headers.push_back(decodeHeaderMatch(h));
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

model::HttpHeaderModifier decodeHeaderModifier(const Field& m) {
  m.allowOnly({"set", "add", "remove"});
  model::HttpHeaderModifier mod;
  std::vector<std::string> seen;
  // Gateway API keys set, add and remove by name (case-insensitive): a name appears once.
  auto once = [&](const Field& f, const std::string& name) {
    std::string lower = absl::AsciiStrToLower(name);
    for (const std::string& s : seen) {
      if (s == lower) {
        f.fail(text::cat("header '", name, "' is listed twice"));
      }
    }
    seen.push_back(std::move(lower));
  };
  for (auto [key, out] : {std::pair{"set", &mod.set}, std::pair{"add", &mod.add}}) {
    seen.clear();
    for (const auto& h : m[key].list()) {
      h.allowOnly({"name", "value"});
      std::string name = headerName(h["name"]);
      once(h["name"], name);
      if (!h["value"].present()) {
        h["value"].fail("required field is missing");
      }
      out->emplace_back(std::move(name), h["value"].str());
    }
  }
  seen.clear();
  for (const auto& r : m["remove"].list()) {
    std::string name = headerName(r);
    once(r, name);
    mod.remove.push_back(std::move(name));
  }
  return mod;
}

// A path that goes into the request line or Location as it is.
void checkPathValue(const Field& f, const std::string& value, bool may_be_empty) {
  if (value.empty() && may_be_empty) {
    return;
  }
  if (value.empty() || value[0] != '/') {
    f.fail(text::cat("'", value, "' must start with '/'"));
  }
  if (value.size() > 1024) {
    f.fail("longer than 1024 characters");
  }
  for (char c : value) {
    if (c == '#' || c == '?' || static_cast<unsigned char>(c) <= 0x20 ||
        static_cast<unsigned char>(c) >= 0x7f) {
      f.fail(text::cat("'", value, "' may not hold '#', '?', spaces or control characters"));
    }
  }
}

model::HttpPathModifier decodePathModifier(const Field& p) {
  p.allowOnly({"type", "replaceFullPath", "replacePrefixMatch"});
  std::string type = p["type"].nonEmptyStr();
  model::HttpPathModifier out;
  std::string_view field = "replaceFullPath", other = "replacePrefixMatch";
  if (type == "ReplacePrefixMatch") {
    out.type = model::HttpPathModifier::Type::kReplacePrefixMatch;
    std::swap(field, other);
  } else if (type != "ReplaceFullPath") {
    p["type"].fail(text::cat("'", type, "' is not ReplaceFullPath or ReplacePrefixMatch"));
  }
  if (p[other].present()) {
    p[other].fail(text::cat("not allowed with type ", type));
  }
  if (!p[field].present()) {
    p[field].fail(text::cat("required with type ", type));
  }
  out.value = p[field].str();
  checkPathValue(p[field], out.value, /*may_be_empty=*/field == "replacePrefixMatch");
  return out;
}

std::string preciseHostname(const Field& f) {
  std::string host = f.nonEmptyStr();
  checkDnsSubdomain(f, host);  // no wildcard: Gateway API's PreciseHostname
  return host;
}

model::HttpRequestRedirect decodeRedirect(const Field& r) {
  r.allowOnly({"scheme", "hostname", "path", "port", "statusCode"});
  model::HttpRequestRedirect out;
  if (r["scheme"].present()) {
    out.scheme = r["scheme"].str();
    if (out.scheme != "http" && out.scheme != "https") {
      r["scheme"].fail(text::cat("'", out.scheme, "' is not http or https"));
    }
  }
  if (r["hostname"].present()) {
    out.hostname = preciseHostname(r["hostname"]);
  }
  if (r["path"].present()) {
    out.path = decodePathModifier(r["path"]);
  }
  if (r["port"].present()) {
    out.port = decodePort(r["port"]);
  }
  if (r["statusCode"].present()) {
    int64_t code = r["statusCode"].integer(0, 999);
    if (code != 301 && code != 302 && code != 303 && code != 307 && code != 308) {
      r["statusCode"].fail(text::cat(code, " is not 301, 302, 303, 307 or 308"));
    }
    out.status_code = static_cast<uint16_t>(code);
  }
  return out;
}

model::HttpUrlRewrite decodeRewrite(const Field& r) {
  r.allowOnly({"hostname", "path"});
  model::HttpUrlRewrite out;
  if (r["hostname"].present()) {
    out.hostname = preciseHostname(r["hostname"]);
  }
  if (r["path"].present()) {
    out.path = decodePathModifier(r["path"]);
  }
  return out;
}

// The filters of a rule or of one backendRef, and where a ReplacePrefixMatch was set (it needs
// the rule's single PathPrefix match, checked once the matches are known).
struct Filters {
  std::optional<model::HttpHeaderModifier> request_headers, response_headers;
  std::optional<model::HttpRequestRedirect> redirect;
  std::optional<model::HttpUrlRewrite> rewrite;
  std::optional<Field> redirect_field, rewrite_field, prefix_field;
};

bool replacesPrefix(const std::optional<model::HttpPathModifier>& path) {
  return path && path->type == model::HttpPathModifier::Type::kReplacePrefixMatch;
}

// One entry of rules[].filters (`per_backend` false) or backendRefs[].filters.
void decodeFilter(const Field& f, const Meta& meta, bool per_backend, Filters& out,
                  model::HttpRouteRule& rule) {
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
  auto once = [&](bool already) {
    if (already) {
      f.fail(text::cat("only one ", type, " filter is allowed per ",
                       per_backend ? "backendRef" : "rule"));
    }
  };
  if (type == "RequestHeaderModifier" || type == "ResponseHeaderModifier") {
    const bool request = type == "RequestHeaderModifier";
    const char* field = request ? "requestHeaderModifier" : "responseHeaderModifier";
    auto& slot = request ? out.request_headers : out.response_headers;
    only(field);
    once(slot.has_value());
    slot = decodeHeaderModifier(f[field]);
  } else if (type == "URLRewrite") {
    only("urlRewrite");
    once(out.rewrite.has_value());
    out.rewrite = decodeRewrite(f["urlRewrite"]);
    out.rewrite_field = f;
    if (replacesPrefix(out.rewrite->path)) {
      out.prefix_field = f["urlRewrite"]["path"];
    }
  } else if (type == "RequestRedirect" && !per_backend) {
    only("requestRedirect");
    once(out.redirect.has_value());
    out.redirect = decodeRedirect(f["requestRedirect"]);
    out.redirect_field = f;
    if (replacesPrefix(out.redirect->path)) {
      out.prefix_field = f["requestRedirect"]["path"];
    }
  } else if (type == "RequestMirror" && !per_backend) {
    only("requestMirror");
    if (rule.mirror) {
      f.fail("Ferry supports one RequestMirror filter per rule");
    }
    decodeMirror(f["requestMirror"], meta, rule);
  } else if (per_backend && (type == "RequestRedirect" || type == "RequestMirror")) {
    f["type"].fail(text::cat(type,
                             " is not supported per backend by Ferry (a redirect answers before "
                             "a backend is chosen; mirroring is per rule): put it in the rule's "
                             "filters"));
  } else if (type == "CORS") {
    f["type"].fail(
        "CORS is not in the standard channel of Gateway API v1.0, the version Ferry implements "
        "(docs/gateway-api.md)");
  } else if (type == "ExtensionRef") {
    f["type"].fail("ExtensionRef names an implementation-specific filter; Ferry defines none");
  } else {
    f["type"].fail(text::cat("filter type '", type,
                             "' is not a Gateway API v1.0 standard filter (RequestHeaderModifier, "
                             "ResponseHeaderModifier, RequestMirror, RequestRedirect, "
                             "URLRewrite)"));
  }
  if (out.redirect && out.rewrite) {
    f.fail("RequestRedirect and URLRewrite may not be combined");
  }
}

// ReplacePrefixMatch replaces the prefix the request matched: the rule must have exactly one
// match, and it must be a PathPrefix one (an absent path is PathPrefix "/").
void checkPrefixReplace(const Filters& filters, const std::vector<model::HttpRouteMatch>& matches) {
  if (!filters.prefix_field) {
    return;
  }
  if (matches.size() != 1) {
    filters.prefix_field->fail(
        text::cat("ReplacePrefixMatch needs exactly one match in the rule "
                  "(it has ",
                  matches.size(), ")"));
  }
  const auto& path = matches[0].path;
  if (path && path->type != model::HttpPathMatch::Type::kPathPrefix) {
    filters.prefix_field->fail(
        "ReplacePrefixMatch needs the rule's match to be of type PathPrefix");
  }
}

model::HttpRouteRule decodeRule(const Field& f, const Meta& meta, RouteMatchDecoder decode_match) {
  f.allowOnly(
      {"name", "matches", "filters", "backendRefs", "timeouts", "retry", "sessionPersistence"});
  if (f["sessionPersistence"].present()) {
    f["sessionPersistence"].fail("not supported by Ferry");
  }
  model::HttpRouteRule rule;
  for (const auto& m : f["matches"].list()) {
    rule.matches.push_back(decode_match(m));
  }
  if (rule.matches.empty()) {
    // Gateway API's default: match every request.
    rule.matches.push_back(model::HttpRouteMatch{model::HttpPathMatch{}, {}, {}, std::nullopt});
  }
  Filters filters;
  for (const auto& filter : f["filters"].list()) {
    decodeFilter(filter, meta, /*per_backend=*/false, filters, rule);
  }
  checkPrefixReplace(filters, rule.matches);
  rule.request_header_modifier = std::move(filters.request_headers);
  rule.response_header_modifier = std::move(filters.response_headers);
  rule.redirect = filters.redirect;
  rule.rewrite = filters.rewrite;
  if (rule.redirect && !f["backendRefs"].list().empty()) {
    f["backendRefs"].fail(
        "not allowed with a RequestRedirect filter (the redirect is the rule's answer)");
  }
  if (rule.redirect && rule.mirror) {
    filters.redirect_field->fail(
        "Ferry does not mirror redirected requests: RequestRedirect and RequestMirror may not "
        "share a rule");
  }
  for (const auto& b : f["backendRefs"].list()) {
    b.allowOnly({"group", "kind", "name", "namespace", "port", "weight", "filters"});
    model::BackendRef ref = serviceRef(b, meta);
    if (b["weight"].present()) {
      ref.weight = static_cast<uint32_t>(b["weight"].integer(0, 1'000'000));
    }
    Filters own;
    for (const auto& filter : b["filters"].list()) {
      decodeFilter(filter, meta, /*per_backend=*/true, own, rule);
    }
    checkPrefixReplace(own, rule.matches);
    if (own.rewrite && rule.rewrite) {
      own.rewrite_field->fail(
          "the rule has a URLRewrite filter already; Ferry applies one URLRewrite per request");
    }
    ref.filters.request_header_modifier = std::move(own.request_headers);
    ref.filters.response_header_modifier = std::move(own.response_headers);
    ref.filters.rewrite = std::move(own.rewrite);
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
  return decodeRouteWith(root, meta, &decodeMatch);
}

model::HttpRoute decodeRouteWith(const Field& root, const Meta& meta,
                                 RouteMatchDecoder decode_match) {
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
    route.rules.push_back(decodeRule(rule, meta, decode_match));
  }
  return route;
}

}  // namespace ferry::k8s::internal
