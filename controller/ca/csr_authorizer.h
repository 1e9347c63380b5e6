// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Who may get which certificate. An agent (authenticated by its node certificate) may get a
// workload certificate only for a mesh pod the controller knows, scheduled on that agent's own
// node, and only for the SPIFFE ID of that pod's service account. A compromised node thus
// cannot mint identities of pods elsewhere.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controller/ca/ca.h"
#include "controller/node_view.h"

namespace ferry::ca {

// The URI SANs a CSR asks for (without trusting or verifying anything).
absl::StatusOr<std::vector<std::string>> csrUriSans(const std::string& csr_pem);

class WorkloadCsrAuthorizer {
 public:
  WorkloadCsrAuthorizer(CertificateAuthority& ca, const controller::NodeViewProvider& view)
      : ca_(ca), view_(view) {}

  struct Signed {
    std::string cert_pem;
    std::string trust_bundle_pem;
  };

  // PermissionDenied (with the reason) unless `pod` runs on `caller_node`, is in the mesh, and
  // the CSR asks for exactly spiffe://<td>/ns/<ns>/sa/<pod's service account>.
  absl::StatusOr<Signed> signForPod(const std::string& caller_node, const model::ObjectKey& pod,
                                    const std::string& csr_pem, absl::Time now);

 private:
  CertificateAuthority& ca_;
  const controller::NodeViewProvider& view_;
};

}  // namespace ferry::ca
