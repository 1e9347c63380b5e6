// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The agent's connection to ferry-controller (:15012). It bootstraps a node certificate (key
// kept in memory), watches the node-scoped snapshot, and keeps the last good state whatever
// happens to the controller: a dropped stream, a refused update or a controller restart never
// clears it. On reconnect it sends its epoch and version so the controller can resume with a
// delta. It also asks for workload certificates.
//
//   ClientConfig cfg{.address = "ctrl:15012", .node = "node1", .bootstrap_token = ...,
//                    .ca_bundle_pem = roots};
//   auto client = ControlPlaneClient::start(cfg, [](const model::NodeSnapshot& s) { ... });
//   client->snapshot();                      // last good state, if any
//   client->signWorkload({"ns", "pod"}, csr_pem, absl::Seconds(5));

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "model/model.h"

namespace ferry::controlplane {

struct ClientConfig {
  std::string address;  // host:port of the controller
  std::string node;
  std::string trust_domain = "cluster.local";
  // Roots that authenticate the controller before the first snapshot (the CA root ConfigMap or
  // file). Replaced by the pushed trust bundle afterwards, so rotations reach the client.
  std::string ca_bundle_pem;
  // Expected URI SAN of the controller.
  std::string controller_identity = "spiffe://cluster.local/ns/ferry-system/sa/ferry-controller";
  // Returns the bootstrap credential; called at each bootstrap because projected
  // service-account tokens are rotated on disk.
  std::function<absl::StatusOr<std::string>()> bootstrap_token;
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(30);
  absl::Duration rpc_timeout = absl::Seconds(10);
};

struct ClientStats {
  uint64_t connects = 0;
  uint64_t full_snapshots = 0;
  uint64_t deltas = 0;
  uint64_t rejected_updates = 0;
  uint64_t bootstraps = 0;
};

class ControlPlaneClient {
 public:
  using OnUpdate = std::function<void(const model::NodeSnapshot&)>;

  static absl::StatusOr<std::unique_ptr<ControlPlaneClient>> start(ClientConfig config,
                                                                   OnUpdate on_update);
  ~ControlPlaneClient();  // stops the watch thread

  // The last good snapshot (nullopt before the first one).
  std::optional<model::NodeSnapshot> snapshot() const;
  uint64_t version() const;
  bool connected() const { return connected_.load(); }
  ClientStats stats() const;
  std::string lastError() const;

  // Workload certificate for a pod on this node. Returns the leaf PEM; the controller refuses
  // pods of other nodes and CSRs for another service account.
  absl::StatusOr<std::string> signWorkload(const model::ObjectKey& pod, const std::string& csr_pem,
                                           absl::Duration timeout);

  struct Impl;

 private:
  ControlPlaneClient() = default;
  void run();

  std::unique_ptr<Impl> impl_;
  std::atomic<bool> connected_{false};
  std::thread thread_;
};

}  // namespace ferry::controlplane
