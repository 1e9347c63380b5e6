// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Standalone mode: the mesh's state from a folder of Kubernetes manifests (the same files and
// decoders the controller reads), re-read when a file changes. A service without
// EndpointSlices gets its endpoints from the pods its selector matches, as the Kubernetes
// endpoint controller would have made them. A bad object is logged and skipped; the others
// apply. Admission is the loader's (k8s/loader.h): a duplicate or a taken address never
// replaces what is in force, and while a file that held objects in force is refused as a whole
// (over a budget), the agent keeps its last good state.

#include <atomic>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "agent/state/state_source.h"
#include "k8s/loader.h"

namespace ferry::agent {

class ManifestStateSource : public StateSource {
 public:
  ManifestStateSource(std::string dir, std::string node, std::string trust_domain)
      : dir_(std::move(dir)), node_(std::move(node)), trust_domain_(std::move(trust_domain)) {}
  ~ManifestStateSource() override;
  absl::Status start(Callback on_update) override;

  // One pass: the snapshot the folder describes now, admitted against the last one built.
  absl::StatusOr<model::NodeSnapshot> build();

 private:
  std::string signature() const;  // file names, sizes and mtimes

  std::string dir_;
  std::string node_;
  std::string trust_domain_;
  k8s::InForce in_force_;  // what the last snapshot built holds (build() only)
  std::atomic<bool> stop_{false};
  std::thread watcher_;
};

}  // namespace ferry::agent
