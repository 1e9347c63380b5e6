// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Istio's string values: "*" means present (non-empty), "abc*" a prefix, "*abc" a suffix, any
// other value an exact match. A leading '*' wins over a trailing one, as in Istio. Hosts,
// principals and namespaces add their own twists, built by the factory functions below.

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace ferry::policy {

class StringMatcher {
 public:
  enum class Kind { kExact, kPrefix, kSuffix, kPresence };

  // `pattern` is Istio syntax (see checkPattern for what is accepted).
  static StringMatcher fromPattern(std::string_view pattern);
  // Hosts (`to.operation.hosts`): case-insensitive; an exact host also matches the same host
  // with a ":port" suffix, as Istio's generated `(?i)host(:[0-9]+)?` regex does.
  static StringMatcher host(std::string_view pattern);
  // Principals: Istio writes them without "spiffe://" ("cluster.local/ns/a/sa/b") and prepends
  // it when matching; values already starting with "spiffe://" are taken as they are.
  static StringMatcher principal(std::string_view pattern);

  bool matches(std::string_view value) const;
  Kind kind() const { return kind_; }
  const std::string& value() const { return value_; }
  // The pattern as the policy wrote it, for explanations.
  const std::string& pattern() const { return pattern_; }

 private:
  Kind kind_ = Kind::kExact;
  std::string value_;
  std::string pattern_;
  bool ignore_case_ = false;
  bool allow_port_suffix_ = false;
};

// Accepts Istio's value syntax: non-empty, and '*' only as the whole value, its first or its
// last character (never both, never inside), since Istio would silently treat "a*b" as exact.
absl::Status checkPattern(std::string_view pattern);

}  // namespace ferry::policy
