// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The agent's state and certificates from ferry-controller (--controller) instead of a
// manifests folder and certificate files. One ControllerLink (the gRPC client: node
// bootstrap, node-scoped watch, SignWorkload) is shared by the state source here and the
// certificate store (workload_certs.h). Snapshots go through the same StateSource seam as
// manifest_state, so the agent indexes them the same way; while the controller is away the
// client keeps the last good snapshot and the agent keeps serving it.

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "agent/state/state_source.h"
#include "controlplane/client.h"

namespace ferry::agent {

class ControllerLink {
 public:
  explicit ControllerLink(controlplane::ClientConfig config) : config_(std::move(config)) {}
  ~ControllerLink() { stop(); }

  // Connects (in the background) and delivers every applied snapshot to `on_update`.
  absl::Status start(controlplane::ControlPlaneClient::OnUpdate on_update);
  // Ends the watch; later calls see Unavailable and the last snapshot stays readable.
  void stop();

  // The last good snapshot (nullopt before the first).
  std::optional<model::NodeSnapshot> snapshot() const;
  absl::StatusOr<std::string> signWorkload(const model::ObjectKey& pod, const std::string& csr_pem,
                                           absl::Duration timeout);
  const std::string& node() const { return config_.node; }
  const std::string& trustDomain() const { return config_.trust_domain; }
  std::string lastError() const;
  // True while the watch stream to the controller is up.
  bool connected() const;

 private:
  std::shared_ptr<controlplane::ControlPlaneClient> client() const;

  controlplane::ClientConfig config_;
  mutable std::mutex mu_;
  std::shared_ptr<controlplane::ControlPlaneClient> client_;
  std::optional<model::NodeSnapshot> last_;  // kept after stop()
};

// Builds the client configuration from the agent's flags (reads the token and root files).
absl::StatusOr<controlplane::ClientConfig> controllerClientConfig(const std::string& address,
                                                                  const std::string& node,
                                                                  const std::string& trust_domain,
                                                                  const std::string& token_file,
                                                                  const std::string& roots_file);

class ControllerStateSource : public StateSource {
 public:
  ControllerStateSource(std::shared_ptr<ControllerLink> link, absl::Duration first_snapshot_wait)
      : link_(std::move(link)), wait_(first_snapshot_wait) {}
  ~ControllerStateSource() override { link_->stop(); }
  // Waits for the first snapshot (bounded): an agent with no state at all would refuse every
  // pod, so it fails start-up with the controller's error instead.
  absl::Status start(Callback on_update) override;
  std::optional<bool> connected() const override { return link_->connected(); }

 private:
  std::shared_ptr<ControllerLink> link_;
  absl::Duration wait_;
};

}  // namespace ferry::agent
