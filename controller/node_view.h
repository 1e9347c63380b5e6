// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The seam between the controller's state store (which knows the cluster) and the parts that
// serve agents (certificate authority, distribution). Both sides only see this interface, so
// either can be tested against a fake of the other.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"

namespace ferry::controller {

// How a node's view changed since an earlier version of it, when the provider can tell without
// rebuilding the view: today when only policy-kind objects (AuthorizationPolicy,
// PeerAuthentication, RateLimitPolicy, RequestAuthentication) changed in between.
struct NodeViewChanges {
  uint64_t version = 0;  // the provider's version these changes bring the view to
  // Rebuild with snapshotFor instead (something else changed, or the change log no longer
  // reaches back to the version asked about).
  bool rebuild = true;
  // Policy-kind items now in the view that changed since (only the four policy lists are set).
  model::NodeSnapshot upserts;
  // Policy-kind objects that changed since and are not in the view now: if the view held them,
  // they leave it.
  struct Keys {
    std::vector<model::ObjectKey> policies, peer_authentications, rate_limits,
        request_authentications;
  } gone;
};

// The cluster as the controller sees it, scoped per node. Implemented by the state store.
class NodeViewProvider {
 public:
  virtual ~NodeViewProvider() = default;
  // Everything the agent on `node` needs (local mesh workloads, services + endpoints it may
  // call, policies selecting local pods, routes), stamped with the store's current version.
  virtual model::NodeSnapshot snapshotFor(const std::string& node) const = 0;
  // What changed in `node`'s view since `since` (the version of an earlier snapshotFor or
  // changesSince for that node). A provider that cannot tell asks for a rebuild.
  virtual NodeViewChanges changesSince(const std::string& /*node*/, uint64_t /*since*/) const {
    return {};
  }
  // For CSR authorization: the pod (namespace/name) if known.
  virtual std::optional<model::Workload> findWorkload(const model::ObjectKey& pod) const = 0;
  // Called (from any thread) after each change is applied; the argument is the new version.
  virtual void subscribe(std::function<void(uint64_t)> on_change) = 0;
};

}  // namespace ferry::controller
