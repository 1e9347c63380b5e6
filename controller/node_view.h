// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The seam between the controller's state store (which knows the cluster) and the parts that
// serve agents (certificate authority, distribution). Both sides only see this interface, so
// either can be tested against a fake of the other.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "model/model.h"

namespace ferry::controller {

// The cluster as the controller sees it, scoped per node. Implemented by the state store.
class NodeViewProvider {
 public:
  virtual ~NodeViewProvider() = default;
  // Everything the agent on `node` needs (local mesh workloads, services + endpoints it may
  // call, policies selecting local pods, routes), stamped with the store's current version.
  virtual model::NodeSnapshot snapshotFor(const std::string& node) const = 0;
  // For CSR authorization: the pod (namespace/name) if known.
  virtual std::optional<model::Workload> findWorkload(const model::ObjectKey& pod) const = 0;
  // Called (from any thread) after each change is applied; the argument is the new version.
  virtual void subscribe(std::function<void(uint64_t)> on_change) = 0;
};

}  // namespace ferry::controller
