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
  std::string_view source_namespace;  // from the SPIFFE ID; empty for plaintext peers
  std::string_view path;              // without the query string
  bool http;
};

View makeView(const Request& request);

enum class RuleOutcome { kMatch, kNoMatch, kSkippedAtL4 };

RuleOutcome evaluateRule(const CompiledRule& rule, model::PolicyAction action, const View& v,
                         std::string* why);

}  // namespace ferry::policy::internal
