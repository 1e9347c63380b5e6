// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Workload certificates (SVIDs) and the trust bundle, as TLS contexts ready for connections.
// Lookups are lock-free: the identity -> context map is an immutable snapshot behind an atomic
// shared_ptr; a miss (first use of an identity) takes the slow path, builds the context and
// publishes a new snapshot. reload() re-reads everything (rotation) and swaps it in; connections
// in flight keep the context they started with.

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "tls/context.h"

namespace ferry::agent {

class CertificateStore {
 public:
  virtual ~CertificateStore() = default;
  // The TLS context a local workload of `ns`/`sa` speaks with (client and server side).
  virtual absl::StatusOr<std::shared_ptr<const tls::TlsContext>> contextFor(
      const std::string& ns, const std::string& service_account) = 0;
};

// Certificates from a folder: `<ns>.<sa>.crt` (leaf first, then intermediates), `<ns>.<sa>.key`
// and `bundle.pem` (every trusted root). Standalone mode and tests; the controller client
// replaces it.
class FileCertificateStore : public CertificateStore {
 public:
  FileCertificateStore(std::string dir, std::string trust_domain,
                       tls::TlsContextOptions options = {});
  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> contextFor(
      const std::string& ns, const std::string& service_account) override;
  // Re-reads the bundle and every identity loaded so far; failures keep the old context.
  absl::Status reload();

 private:
  using Map = std::map<std::string, std::shared_ptr<const tls::TlsContext>>;
  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> load(const std::string& key);

  std::string dir_;
  tls::TlsContextOptions options_;
  std::mutex load_mu_;  // slow path only: first use of an identity, reload
  std::atomic<std::shared_ptr<const Map>> contexts_{std::make_shared<const Map>()};
};

}  // namespace ferry::agent
