// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Workload certificates (SVIDs) and the trust bundle. Placeholder interface until the TLS
// library lands.

namespace ferry::agent {

class CertificateStore {
 public:
  virtual ~CertificateStore() = default;
};

}  // namespace ferry::agent
