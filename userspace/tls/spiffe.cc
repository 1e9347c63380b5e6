// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "tls/spiffe.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ferry::tls {
namespace {

constexpr absl::string_view kScheme = "spiffe://";

bool isTrustDomainChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

// Kubernetes names (namespaces, service accounts) are DNS labels/subdomains; SPIFFE path
// segments additionally allow upper case and '_'. Accept the SPIFFE set.
bool isSegmentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

absl::Status badId(absl::string_view uri, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("SPIFFE ID '", uri, "': ", why));
}

absl::Status checkSegment(absl::string_view uri, absl::string_view what, absl::string_view seg) {
  if (seg.empty()) {
    return badId(uri, absl::StrCat(what, " is empty"));
  }
  if (seg == "." || seg == "..") {
    return badId(uri, absl::StrCat(what, " may not be '.' or '..'"));
  }
  for (char c : seg) {
    if (!isSegmentChar(c)) {
      return badId(uri, absl::StrCat(what, " '", seg, "' has a character outside [A-Za-z0-9._-]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status validateTrustDomain(absl::string_view td) {
  if (td.empty()) {
    return absl::InvalidArgumentError("trust domain is empty");
  }
  if (td.size() > 255) {
    return absl::InvalidArgumentError("trust domain is longer than 255 bytes");
  }
  for (char c : td) {
    if (!isTrustDomainChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("trust domain '", td,
                       "' has a character outside [a-z0-9._-] (no upper case, port or "
                       "user info)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SpiffeId> SpiffeId::parse(absl::string_view uri) {
  if (uri.size() > 2048) {
    return absl::InvalidArgumentError("SPIFFE ID is longer than 2048 bytes");
  }
  if (!absl::StartsWith(uri, kScheme)) {
    return badId(uri, "must start with spiffe:// (scheme is case-sensitive)");
  }
  if (uri.find_first_of("?#") != absl::string_view::npos) {
    return badId(uri, "may not have a query or fragment");
  }
  absl::string_view rest = uri.substr(kScheme.size());
  size_t slash = rest.find('/');
  absl::string_view td = rest.substr(0, slash);
  if (absl::Status s = validateTrustDomain(td); !s.ok()) {
    return badId(uri, s.message());
  }
  if (slash == absl::string_view::npos) {
    return badId(uri, "has no path; a workload ID is spiffe://<td>/ns/<namespace>/sa/<account>");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(rest.substr(slash + 1), '/');
  if (parts.size() != 4 || parts[0] != "ns" || parts[2] != "sa") {
    return badId(uri, "path must be /ns/<namespace>/sa/<service-account>");
  }
  if (absl::Status s = checkSegment(uri, "namespace", parts[1]); !s.ok()) {
    return s;
  }
  if (absl::Status s = checkSegment(uri, "service account", parts[3]); !s.ok()) {
    return s;
  }
  return SpiffeId{std::string(td), std::string(parts[1]), std::string(parts[3])};
}

std::string SpiffeId::uri() const {
  return absl::StrCat(kScheme, trust_domain, "/ns/", ns, "/sa/", service_account);
}

}  // namespace ferry::tls
