// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Workload identities: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace ferry::tls {

struct SpiffeId {
  std::string trust_domain;
  std::string ns;
  std::string service_account;

  // Parses and validates a workload SPIFFE ID; errors quote the input and name the rule broken.
  static absl::StatusOr<SpiffeId> parse(absl::string_view uri);

  std::string uri() const;

  friend bool operator==(const SpiffeId&, const SpiffeId&) = default;
};

// Trust domain names: lowercase letters, digits, '.', '-', '_' (SPIFFE spec), non-empty,
// at most 255 bytes.
absl::Status validateTrustDomain(absl::string_view trust_domain);

}  // namespace ferry::tls
