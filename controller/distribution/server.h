// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The controller's side of :15012. One TLS port serves both phases:
//  - Bootstrap over server-authenticated TLS with a bootstrap credential, or over mTLS to renew;
//  - Watch and SignWorkload over mTLS only.
// The TLS layer requests but does not verify client certificates; each handler verifies the
// peer's certificate against the CA's *current* trust bundle. That way a root rotation applies
// to the next call without rebuilding the listener.

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "controller/ca/ca.h"
#include "controller/ca/csr_authorizer.h"
#include "controller/distribution/bootstrap_auth.h"
#include "controller/node_view.h"
#include "distribution/snapshot_delta.h"

namespace grpc {
class Server;
}

namespace ferry::distribution {

struct ServerConfig {
  std::string listen_address = "0.0.0.0:15012";  // "127.0.0.1:0" in tests
  // The controller's own identity, which agents check (URI SAN).
  std::string controller_namespace = "ferry-system";
  std::string controller_service_account = "ferry-controller";
  absl::Duration node_cert_lifetime = absl::Hours(24);
  // How often an idle Watch stream looks for cancellation (it wakes at once on changes).
  absl::Duration idle_poll = absl::Milliseconds(200);
  // The version before the first one sent. ferry-controller starts from the wall clock (in
  // microseconds) so the versions an agent sees keep increasing across controller restarts.
  uint64_t first_version = 0;
};

class DistributionService;

class DistributionServer {
 public:
  static absl::StatusOr<std::unique_ptr<DistributionServer>> start(
      const ServerConfig& config, ca::CertificateAuthority& ca, controller::NodeViewProvider& view,
      BootstrapAuthenticator& bootstrap);
  ~DistributionServer();

  int port() const { return port_; }
  // The epoch of this process: versions are only comparable within one epoch.
  const std::string& epoch() const;
  // Wake every stream to re-send the trust bundle (after CA::rotate).
  void trustBundleChanged();
  // Ends every open stream; agents reconnect and resume (rebalancing across replicas, tests).
  void dropStreams();
  // Ends every stream and stops listening (the agents keep their last state).
  void shutdown();

  // Counters for metrics and tests.
  uint64_t fullSnapshotsSent() const;
  uint64_t deltasSent() const;
  uint64_t resumes() const;

 private:
  DistributionServer() = default;
  std::unique_ptr<DistributionService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// The controller's identity: spiffe://<td>/ns/<controller ns>/sa/<controller sa>.
std::string controllerIdentity(const std::string& trust_domain, const ServerConfig& config);

}  // namespace ferry::distribution
