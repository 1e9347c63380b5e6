// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The agent's read-only view of the mesh, rebuilt from each NodeSnapshot and published as an
// immutable object through an atomic shared_ptr: workers load it once per connection, never
// lock, and an update never disturbs a connection in flight.
//
// Endpoint choice for a service VIP: uniformly random among ready endpoints, with a per-worker
// generator. It needs no state shared between workers or agents, spreads connections evenly
// in expectation, and cannot herd every agent onto the same endpoint the way round robin from
// a shared start does after a restart. Least-connections would need counts shared across
// workers (a lock or atomics on the hot path) and still be wrong across nodes.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "agent/state/policy_state.h"
#include "model/model.h"

namespace ferry::agent {

struct ServiceTarget {
  const model::Service* service = nullptr;
  const model::ServicePort* port = nullptr;
  const model::ServiceEndpoints* endpoints = nullptr;
};

// Where a captured connection goes.
struct Destination {
  std::string ip;  // the pod (or, outside the mesh, the original) address
  uint16_t port = 0;
  const model::Workload* workload = nullptr;  // null: not a mesh workload (passthrough)
  const model::Service* service = nullptr;    // set when the original destination was a VIP
};

class WorkloadState {
 public:
  explicit WorkloadState(model::NodeSnapshot snapshot);

  const model::NodeSnapshot& snapshot() const { return snapshot_; }
  const std::string& node() const { return snapshot_.node; }
  const std::string& trustDomain() const { return snapshot_.trust_domain; }
  const model::Workload* workloadByIp(const std::string& ip) const;
  const model::Workload* workloadByUid(const std::string& uid) const;
  bool isLocal(const model::Workload& w) const { return w.node == snapshot_.node; }
  std::optional<ServiceTarget> serviceByVip(const std::string& ip, uint16_t port) const;
  // The snapshot's AuthorizationPolicies, compiled once when this state is built and shared by
  // every worker (policy_state.h).
  const PolicyState& policies() const { return *policies_; }

  // Resolves an original destination (VIP or pod IP). NotFound-like outcomes are reported as a
  // Destination with workload == nullptr and an empty ip when a VIP has no ready endpoint.
  Destination resolve(const std::string& ip, uint16_t port, std::mt19937& rng) const;

 private:
  model::NodeSnapshot snapshot_;
  std::map<std::string, const model::Workload*> by_ip_;
  std::map<std::string, const model::Workload*> by_uid_;
  std::map<std::string, const model::Service*> by_vip_;
  std::map<model::ObjectKey, const model::ServiceEndpoints*> endpoints_;
  std::shared_ptr<const PolicyState> policies_;
};

// Holds the current WorkloadState; set() from the control thread, current() from workers.
class WorkloadStateHolder {
 public:
  std::shared_ptr<const WorkloadState> current() const { return state_.load(); }
  void set(std::shared_ptr<const WorkloadState> state) { state_.store(std::move(state)); }

 private:
  std::atomic<std::shared_ptr<const WorkloadState>> state_{
      std::make_shared<const WorkloadState>(model::NodeSnapshot{})};
};

}  // namespace ferry::agent
