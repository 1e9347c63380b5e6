// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The agent-facing half of ferry-controller, assembled from its configuration: the mesh CA,
// the bootstrap authenticator (token file in standalone mode, TokenReview in Kubernetes) and
// the distribution server on --listen, fed by the state store. main.cc and tests build it the
// same way.

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "controller/ca/ca.h"
#include "controller/config.h"
#include "controller/distribution/bootstrap_auth.h"
#include "controller/distribution/server.h"
#include "controller/node_view.h"

namespace ferry::kube {
class Client;
}

namespace ferry::controller {

class AgentServer {
 public:
  // `kube` is the API client in Kubernetes modes (TokenReview), null in standalone mode.
  static absl::StatusOr<std::unique_ptr<AgentServer>> start(const ControllerConfig& config,
                                                            NodeViewProvider& view,
                                                            const kube::Client* kube);
  ~AgentServer();

  int port() const { return server_->port(); }
  distribution::DistributionServer& distribution() { return *server_; }
  ca::CertificateAuthority& authority() { return *ca_; }

  // Root rotation (SIGHUP): with --ca-cert/--ca-key the files, with --ca-secret the Secret, are
  // re-read and become the new root when they changed (the Secret is also re-read every
  // --resync-seconds); otherwise a new root is generated (and kept in --ca-dir). The old
  // root stays in the trust bundle for the overlap window. Agents get the new bundle at once.
  absl::Status rotateRoot();
  // Pushes the bundle again when a retiring root's window closed (called periodically).
  void refreshTrustBundle();

 private:
  AgentServer() = default;
  absl::Status writeTrustBundle(const std::string& pem) const;
  absl::Status syncRootFromSecret(absl::Time now);

  ControllerConfig config_;
  const kube::Client* kube_ = nullptr;
  std::unique_ptr<ca::CertificateAuthority> ca_;
  std::unique_ptr<distribution::TokenReviewer> reviewer_;
  std::unique_ptr<distribution::BootstrapAuthenticator> bootstrap_;
  std::unique_ptr<distribution::DistributionServer> server_;
  std::mutex mu_;
  std::string last_bundle_;
};

}  // namespace ferry::controller
