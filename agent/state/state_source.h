// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Where the agent's view of the mesh comes from: a folder of manifests (standalone mode, tests)
// or, later, the controller. Each delivers whole NodeSnapshots; the agent indexes and publishes
// them (WorkloadStateHolder) and keeps serving the last good one when a source fails.

#include <functional>
#include <optional>

#include "absl/status/status.h"
#include "model/model.h"

namespace ferry::agent {

class StateSource {
 public:
  using Callback = std::function<void(model::NodeSnapshot)>;
  virtual ~StateSource() = default;
  // Delivers the first snapshot before returning (or fails), later ones from any thread.
  virtual absl::Status start(Callback on_update) = 0;
  // Whether the source's upstream (the controller) is connected now; nullopt when the source
  // has none (a folder, a fixed snapshot). Exported as ferry_controlplane_connected.
  virtual std::optional<bool> connected() const { return std::nullopt; }
};

// A fixed snapshot (tests; an agent with no state source serves enrolled pods with default
// policy and no services).
class StaticStateSource : public StateSource {
 public:
  explicit StaticStateSource(model::NodeSnapshot snapshot) : snapshot_(std::move(snapshot)) {}
  absl::Status start(Callback on_update) override {
    on_update(snapshot_);
    return absl::OkStatus();
  }

 private:
  model::NodeSnapshot snapshot_;
};

}  // namespace ferry::agent
