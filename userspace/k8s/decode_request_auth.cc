// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// security.ferry.dev/v1alpha1 RequestAuthentication, with Istio's field names (JWTRule). An inline
// JWKS is parsed by the verifier's own parser at admission, so what is admitted is exactly what
// the agents can verify with.
#include "jwt/jwks.h"
#include "k8s/decoders.h"
#include "policy/text.h"

namespace ferry::k8s::internal {
namespace {

void checkHeaderName(const Field& f, const std::string& name) {
  if (name.empty()) {
    f.fail("must not be empty");
  }
  for (char c : name) {
    if (!text::isTchar(c)) {
      f.fail(text::cat("'", name, "' is not an HTTP header name"));
    }
  }
  // Framing and routing fields are the agent's, never a token's output.
  for (const char* reserved : {"host", "content-length", "transfer-encoding", "connection", "te"}) {
    if (text::equalsIgnoreCase(name, reserved)) {
      f.fail(text::cat("'", name, "' may not be set from a token"));
    }
  }
}

void checkUri(const Field& f, const std::string& uri) {
  if (!uri.starts_with("https://") && !uri.starts_with("http://")) {
    f.fail(text::cat("'", uri, "' is not an http(s) URL"));
  }
  for (char c : uri) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      f.fail("URL has a space or control character");
    }
  }
}

model::JwtRule decodeJwtRule(const Field& f) {
  f.allowOnly({"issuer", "audiences", "jwksUri", "jwks", "fromHeaders", "fromParams", "fromCookies",
               "outputPayloadToHeader", "forwardOriginalToken", "outputClaimToHeaders", "timeout"});
  for (const char* unsupported : {"fromCookies", "timeout"}) {
    if (f[unsupported].present()) {
      f[unsupported].fail("not supported by Ferry");
    }
  }
  model::JwtRule r;
  r.issuer = f["issuer"].nonEmptyStr();
  r.audiences = f["audiences"].strList();
  Field jwks = f["jwks"];
  Field uri = f["jwksUri"];
  if (jwks.present() == uri.present()) {
    f.fail("needs exactly one of jwks and jwksUri (Ferry does not discover keys from the issuer)");
  }
  if (jwks.present()) {
    r.jwks = jwks.nonEmptyStr();
    jwks.check(jwt::parseJwks(r.jwks).status());
  } else {
    r.jwks_uri = uri.nonEmptyStr();
    checkUri(uri, r.jwks_uri);
  }
  for (const auto& h : f["fromHeaders"].list()) {
    h.allowOnly({"name", "prefix"});
    model::JwtHeader header{h["name"].nonEmptyStr(), h["prefix"].strOr("")};
    checkHeaderName(h["name"], header.name);
    r.from_headers.push_back(std::move(header));
  }
  auto params = f["fromParams"].list();
  r.from_params = f["fromParams"].strList();
  for (size_t i = 0; i < params.size(); ++i) {
    if (r.from_params[i].empty() || r.from_params[i].find_first_of("&=") != std::string::npos) {
      params[i].fail("must be a non-empty name without '&' or '='");
    }
  }
  if (f["outputPayloadToHeader"].present()) {
    r.output_payload_to_header = f["outputPayloadToHeader"].nonEmptyStr();
    checkHeaderName(f["outputPayloadToHeader"], r.output_payload_to_header);
  }
  if (f["forwardOriginalToken"].present()) {
    r.forward_original_token = f["forwardOriginalToken"].boolean();
  }
  for (const auto& c : f["outputClaimToHeaders"].list()) {
    c.allowOnly({"header", "claim"});
    model::ClaimToHeader out{c["header"].nonEmptyStr(), c["claim"].nonEmptyStr()};
    checkHeaderName(c["header"], out.header);
    r.output_claim_to_headers.push_back(std::move(out));
  }
  return r;
}

}  // namespace

model::RequestAuthentication decodeRequestAuthentication(const Field& root, const Meta& meta) {
  model::RequestAuthentication ra;
  ra.key = meta.key;
  Field spec = root["spec"];
  if (!spec.present()) {
    return ra;
  }
  spec.allowOnly({"selector", "jwtRules", "targetRef", "targetRefs"});
  for (const char* field : {"targetRef", "targetRefs"}) {
    if (spec[field].present()) {
      spec[field].fail("not supported by Ferry (no waypoints); use selector");
    }
  }
  ra.selector = decodeWorkloadSelector(spec["selector"]);
  auto rules = spec["jwtRules"].list();
  for (const auto& rule : rules) {
    ra.jwt_rules.push_back(decodeJwtRule(rule));
    for (size_t i = 0; i + 1 < ra.jwt_rules.size(); ++i) {
      if (ra.jwt_rules[i].issuer == ra.jwt_rules.back().issuer) {
        rule["issuer"].fail(text::cat("issuer '", ra.jwt_rules.back().issuer,
                                      "' is already used by jwtRules[", i, "]"));
      }
    }
  }
  return ra;
}

}  // namespace ferry::k8s::internal
