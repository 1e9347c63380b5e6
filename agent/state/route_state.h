// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The routing half of the agent's state (issue 8): the compiled HTTPRoutes of the current
// snapshot, and per backend service:port a routing::Cluster (endpoints, load balancing,
// outlier detection, circuit breaking) with its retry budget.
//
// The route table is immutable and swapped whole (atomic shared_ptr), like WorkloadState: a
// request holds the view it started with, so a route change never disturbs it. Clusters and
// per-route counters are NOT rebuilt: they carry state (active requests, ejections, counts)
// that must survive a snapshot, so an update keeps the same objects and only gives a Cluster its
// new endpoint list. Clusters are thread-safe (shared by every worker, which is what makes
// outlier detection and circuit breaking agent-wide rather than per worker).

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/state/workload_state.h"
#include "metrics/exporter.h"
#include "model/model.h"
#include "routing/routing.h"

namespace ferry::agent {

// Options come from the backend Service's ferry.dev/* annotations (routing/service_options.h);
// when they change, the Cluster is replaced (its state starts afresh) while requests and
// connections of the old one finish against it.
struct BackendCluster {
  BackendCluster(std::vector<routing::EndpointRef> endpoints, routing::ClusterOptions options)
      : cluster(std::move(endpoints), options),
        limiter(options.max_connections, options.max_pending_requests) {}
  routing::Cluster cluster;
  routing::RetryBudget budget;
  routing::ConnectionLimiter limiter;  // upstream connections of this agent, all workers
};

// One of a backend's connection slots (max-connections): held by a request while it has an
// upstream connection (opening it, writing, reading the response); released when it is done
// with it, which hands the slot to the first request waiting for one, on whichever worker.
// Idle keep-alive connections in the workers' pools hold none.
class ConnectionSlot {
 public:
  explicit ConnectionSlot(std::shared_ptr<BackendCluster> cluster) : cluster_(std::move(cluster)) {}
  ~ConnectionSlot() { cluster_->limiter.release(); }
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;

 private:
  std::shared_ptr<BackendCluster> cluster_;
};

using BackendKey = std::pair<model::ObjectKey, uint16_t>;  // backend Service, service port

struct RoutingView {
  std::shared_ptr<const routing::RouteTable> table;
  std::map<BackendKey, std::shared_ptr<BackendCluster>> clusters;
  std::map<std::string, routing::RouteStats*> stats;  // by route "ns/name" (the registry's)

  std::shared_ptr<BackendCluster> cluster(const model::ObjectKey& service, uint16_t port) const;
  routing::RouteStats* routeStats(const std::string& route) const;
};

class RoutingState {
 public:
  // `base_ejection_override`: when set, every cluster ejects for this base interval (the
  // --outlier-base-ejection-ms flag; tests and operators who want fast recovery).
  explicit RoutingState(std::optional<absl::Duration> base_ejection_override = std::nullopt)
      : base_ejection_override_(base_ejection_override) {}

  // Control thread, after every snapshot.
  void update(const WorkloadState& state);
  // Workers: the view a request uses from start to end.
  std::shared_ptr<const RoutingView> current() const { return view_.load(); }
  bool hasRoutes(const model::ObjectKey& service, uint16_t port) const;

  // Every route's counters ever seen (metrics keep counting after a route is removed).
  std::map<std::string, routing::RouteStatsValues> allStats() const { return stats_.snapshot(); }

 private:
  void logOptionErrors(const model::NodeSnapshot& snap, const model::ObjectKey& service,
                       const std::vector<std::string>& errors);

  std::optional<absl::Duration> base_ejection_override_;
  std::mutex mu_;  // one update at a time
  std::map<BackendKey, std::shared_ptr<BackendCluster>> clusters_;
  std::map<model::ObjectKey, model::Labels> reported_;  // annotations whose errors were logged
  routing::RouteStatsRegistry stats_;
  std::atomic<std::shared_ptr<const RoutingView>> view_{std::make_shared<const RoutingView>()};
};

// ferry_route_{requests,retries,timeouts,ejections,overflows,faults_injected,mirrors,
// mirror_errors}_total{route,namespace} and ferry_route_mirrors_dropped_total{...,reason}.
std::vector<metrics::Sample> routeSamples(const RoutingState& routing);

// The options of `service`'s clusters: `defaults` overridden by its ferry.dev/* annotations.
// Refused annotations are appended to `errors` ("Service ns/name: annotation ...").
routing::ClusterOptions serviceClusterOptions(const model::NodeSnapshot& snapshot,
                                              const model::ObjectKey& service,
                                              const routing::ClusterOptions& defaults,
                                              std::vector<std::string>* errors = nullptr);

// Where a routed request to endpoint `e` goes: its address and, when the view knows it, its
// workload (by uid, else by address).
Destination endpointDestination(const WorkloadState& state, const routing::EndpointRef& e);

// The endpoints of `service`:`port` as the routing library wants them (target port resolved
// as WorkloadState::resolve does; IPv4 endpoints, or IPv6 when the service has only those).
std::vector<routing::EndpointRef> clusterEndpoints(const model::NodeSnapshot& snapshot,
                                                   const model::ObjectKey& service, uint16_t port);

}  // namespace ferry::agent
