// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

// Request-target handling and path normalization, done once per request: the path that
// policy matches is the path that is forwarded, so no upstream can read a different one.
//
// Normalization follows Istio's documented "Authorization Policy Normalization" options
// (https://istio.io/latest/docs/reference/config/security/normalization/), in this order:
//   1. %2F/%2f/%5C/%5c: keep (as uppercase %2F/%5C), refuse, or decode (then 3. turns a
//      decoded backslash into a slash). Done first, as Envoy does, so decoded slashes take
//      part in the steps below.
//   2. Percent-decoding of unreserved characters (%61 -> a, %2E -> .), uppercase hex for every
//      other escape, refusal of malformed escapes and of %00.
//   3. Backslash -> slash.
//   4. Optionally merge runs of slashes.
//   5. RFC 3986 5.2.4 dot-segment removal. A "." or ".." segment carrying path parameters
//      ("..;jsessionid") is refused: servlet containers resolve it as a dot segment.
// The result is a fixed point: normalizing it again changes nothing (fuzzed).
//
// Matching stays case-sensitive, as in Istio: /ADMIN is not /admin. An application that
// routes case-insensitively needs policies that say so.
namespace ferry::http {

enum class EscapedSlashes { kKeep, kReject, kDecode };

struct PathOptions {
  // Defaults are Istio's DECODE_AND_MERGE_SLASHES, the strictest documented mode: the path
  // the app sees never disagrees with the one matched.
  EscapedSlashes escaped_slashes = EscapedSlashes::kDecode;
  bool merge_slashes = true;
};

// Normalizes an absolute path (no query). Errors name the offending construct.
absl::StatusOr<std::string> normalizePath(std::string_view path, const PathOptions& options);

// A request-target (RFC 9112 3.2) taken apart and normalized.
struct RequestTarget {
  enum class Form { kOrigin, kAbsolute, kAuthority, kAsterisk } form = Form::kOrigin;
  std::string path;        // normalized absolute path; empty for authority/asterisk forms
  std::string_view query;  // without '?', as received (character-checked)
  bool has_query = false;
  std::string_view authority;  // absolute-form and authority-form
  // What is forwarded in place of the received target: origin-form path[?query], the
  // authority for CONNECT, "*" for OPTIONS *.
  std::string forwarded() const;
};

// Parses and normalizes `target` for a request with `method`. absolute-form is accepted for
// http/https without userinfo and forwarded as origin-form; authority-form only with CONNECT
// (and CONNECT only with it); asterisk-form only with OPTIONS.
absl::StatusOr<RequestTarget> parseRequestTarget(std::string_view method, std::string_view target,
                                                 const PathOptions& options);

}  // namespace ferry::http
