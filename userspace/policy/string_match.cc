// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "policy/string_match.h"

#include "absl/strings/ascii.h"
#include "policy/text.h"

namespace ferry::policy {
namespace {

constexpr std::string_view kSpiffePrefix = "spiffe://";

bool equalsMaybeIgnoreCase(std::string_view a, std::string_view b, bool ignore_case) {
  return ignore_case ? text::equalsIgnoreCase(a, b) : a == b;
}

}  // namespace

StringMatcher StringMatcher::fromPattern(std::string_view pattern) {
  StringMatcher m;
  m.pattern_ = std::string(pattern);
  if (pattern == "*") {
    m.kind_ = Kind::kPresence;
  } else if ((pattern).starts_with("*")) {
    m.kind_ = Kind::kSuffix;
    m.value_ = std::string(pattern.substr(1));
  } else if ((pattern).ends_with("*")) {
    m.kind_ = Kind::kPrefix;
    m.value_ = std::string(pattern.substr(0, pattern.size() - 1));
  } else {
    m.kind_ = Kind::kExact;
    m.value_ = std::string(pattern);
  }
  return m;
}

StringMatcher StringMatcher::host(std::string_view pattern) {
  StringMatcher m = fromPattern(pattern);
  m.ignore_case_ = true;
  m.allow_port_suffix_ = m.kind_ == Kind::kExact;
  return m;
}

StringMatcher StringMatcher::principal(std::string_view pattern) {
  StringMatcher m = fromPattern(pattern);
  bool has_scheme = (pattern).starts_with(kSpiffePrefix);
  if (!has_scheme && (m.kind_ == Kind::kExact || m.kind_ == Kind::kPrefix)) {
    m.value_ = text::cat(kSpiffePrefix, m.value_);
  }
  return m;
}

bool StringMatcher::matches(std::string_view value) const {
  switch (kind_) {
    case Kind::kPresence:
      return !value.empty();
    case Kind::kPrefix:
      return value.size() >= value_.size() &&
             equalsMaybeIgnoreCase(value.substr(0, value_.size()), value_, ignore_case_);
    case Kind::kSuffix:
      return value.size() >= value_.size() &&
             equalsMaybeIgnoreCase(value.substr(value.size() - value_.size()), value_,
                                   ignore_case_);
    case Kind::kExact:
      if (equalsMaybeIgnoreCase(value, value_, ignore_case_)) {
        return true;
      }
      if (allow_port_suffix_ && value.size() > value_.size() + 1 && value[value_.size()] == ':' &&
          equalsMaybeIgnoreCase(value.substr(0, value_.size()), value_, ignore_case_)) {
        std::string_view port = value.substr(value_.size() + 1);
        return port.find_first_not_of("0123456789") == std::string_view::npos;
      }
      return false;
  }
  return false;
}

absl::Status checkPattern(std::string_view pattern) {
  if (pattern.empty()) {
    return absl::InvalidArgumentError("empty value");
  }
  if (pattern == "*") {
    return absl::OkStatus();
  }
  std::string_view inner = pattern;
  if ((inner).starts_with("*")) {
    inner.remove_prefix(1);
  } else if ((inner).ends_with("*")) {
    inner.remove_suffix(1);
  }
  if (inner.find('*') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        text::cat("'", pattern,
                  "': '*' is only allowed as the whole value, or as its first or last "
                  "character"));
  }
  return absl::OkStatus();
}

}  // namespace ferry::policy
