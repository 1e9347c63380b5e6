// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to the engine: one compiled rule against one request, with Istio's semantics and
// the L4 projection described in engine.h. With `why` set, the first clause that failed (or
// what matched) is written there for explanations; the decision path passes null and builds no
// strings.

#include <string>
#include <string_view>

#include "policy/compiled.h"
#include "policy/request.h"

namespace ferry::policy::internal {

// Per-request values derived once, shared by every rule.
struct View {
  const Request& request;
  std::string_view source_namespace;        // from the SPIFFE ID; empty for plaintext peers
  std::string_view source_service_account;  // from the SPIFFE ID; empty for plaintext peers
  std::string_view path;                    // without the query string
  bool http;
};

View makeView(const Request& request);

enum class RuleOutcome { kMatch, kNoMatch, kSkippedAtL4 };

// What the HTTP-only parts of a rule do in a decision without an HTTP request (engine.h).
enum class HttpParts {
  kEvaluate,       // there is a request, or the rule has none
  kSkipRule,       // ALLOW rule on a TCP port: never matches
  kAssumeMatch,    // dropped (DENY/AUDIT on a TCP port; ALLOW on an HTTP port: could match)
  kAssumeNoMatch,  // DENY/AUDIT on an HTTP port before any request: cannot be sure yet
};

RuleOutcome evaluateRule(const CompiledRule& rule, model::PolicyAction action, const View& v,
                         std::string* why);

}  // namespace ferry::policy::internal
