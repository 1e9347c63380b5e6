// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The controller's state store: every decoded object from the active source, kept with the
// indexes a per-node view needs, a version that increases with every applied change, and
// change notifications. Sources (Kubernetes informers, a manifest folder) write into it; the
// CA and the distribution server read it through NodeViewProvider.

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controller/node_view.h"
#include "k8s/object.h"

namespace ferry::controller {

struct StoreOptions {
  std::string trust_domain = "cluster.local";
  // Standalone mode has no endpoints controller: a Service without any EndpointSlice gets
  // endpoints from its selector over the mesh pods of its namespace.
  bool endpoints_from_selectors = false;
  // PeerAuthentications here apply mesh-wide (AuthorizationPolicies carry root_namespace).
  std::string root_namespace = "ferry-system";
};

struct StoreStats {
  std::atomic<uint64_t> applied{0};   // upserts and removals
  std::atomic<uint64_t> rejected{0};  // objects refused by a decoder
  std::atomic<uint64_t> replaces{0};  // relists / folder reloads
};

class StateStore : public NodeViewProvider {
 public:
  explicit StateStore(StoreOptions options = {});

  // Adds or replaces one object.
  void upsert(k8s::Decoded object);
  void remove(const k8s::ObjectRef& ref);
  // Makes the objects of `kinds` exactly `objects` (after a relist or a folder reload), in one
  // version step. Objects named in `keep` (refused this time) keep their last good version
  // rather than vanish: a bad edit to a DENY policy must not silently lift it. (A refused
  // AuthorizationPolicy arrives as its fail-closed stand-in instead, which replaces it.)
  void replace(const std::set<k8s::Kind>& kinds, std::vector<k8s::Decoded> objects,
               const std::set<k8s::ObjectRef>& keep = {});
  // Logs and counts an object a decoder refused; the store is unchanged.
  void reject(const std::string& where, const std::string& reason);
  // The PEM roots every node view carries (set by the CA; several during a rotation).
  void setTrustBundle(std::string pem);
  // A jwksUri's keys as the JwksFetcher last got them (or why not). A failure after a success
  // keeps the last good keys; before any success the rules using the URI carry the error, so
  // their tokens are refused (Istio's behaviour with an unreachable jwksUri).
  void setJwks(const std::string& uri, const absl::StatusOr<std::string>& jwks);
  // Every jwksUri of the RequestAuthentications in the store.
  std::set<std::string> jwksUris() const;

  uint64_t version() const;
  const StoreStats& stats() const { return stats_; }
  // Number of objects of one kind, for status pages and tests.
  size_t count(k8s::Kind kind) const;
  // AuthorizationPolicies in force as fail-closed stand-ins of refused ones (k8s::refusedStandIn):
  // each denies everything it selects until it is fixed.
  size_t failingClosedPolicies() const;
  // The last rejection reasons (bounded), newest last.
  std::vector<std::string> recentRejections() const;

  // NodeViewProvider.
  model::NodeSnapshot snapshotFor(const std::string& node) const override;
  NodeViewChanges changesSince(const std::string& node, uint64_t since) const override;
  std::optional<model::Workload> findWorkload(const model::ObjectKey& pod) const override;
  void subscribe(std::function<void(uint64_t)> on_change) override;

 private:
  void upsertLocked(k8s::Decoded object);
  void removeLocked(const k8s::ObjectRef& ref);
  void indexLocked(const k8s::ObjectRef& ref, const k8s::Object& object, bool add);
  // Records the change that made version `v`: one policy-kind object (`ref`) or anything else
  // (nullptr), which makes views older than `v` rebuild.
  void logChangeLocked(uint64_t v, const k8s::ObjectRef* ref);
  // The pods scheduled on `node`, mesh_enabled resolved (the local part of its view).
  std::vector<model::Workload> localWorkloadsLocked(const std::string& node) const;
  // Adds `object` to `snap` if it is a policy-kind object in the view of a node running `local`.
  bool addPolicyLocked(const k8s::Object& object, const std::vector<model::Workload>& local,
                       model::NodeSnapshot& snap) const;
  bool meshMemberLocked(const model::Workload& w) const;
  model::ServiceEndpoints endpointsLocked(const model::Service& svc) const;
  model::RequestAuthentication withJwksLocked(const model::RequestAuthentication& ra) const;
  void notify(uint64_t version);

  const StoreOptions options_;
  mutable std::shared_mutex mu_;
  uint64_t version_ = 0;
  std::map<k8s::ObjectRef, k8s::Object> objects_;
  // Indexes over objects_.
  std::map<std::string, std::set<model::ObjectKey>> pods_by_node_;
  std::map<std::string, model::ObjectKey> pod_by_uid_, pod_by_ip_;
  std::map<model::ObjectKey, std::set<model::ObjectKey>> slices_by_service_;
  // Change log for changesSince: the latest single policy-kind changes (version, object), oldest
  // first; views older than rebuild_before_ (a change of anything else, or the oldest version
  // dropped from the log) must be rebuilt.
  std::deque<std::pair<uint64_t, k8s::ObjectRef>> policy_changes_;
  uint64_t rebuild_before_ = 0;
  std::string trust_bundle_pem_;
  struct FetchedJwks {
    std::string jwks;   // last good; empty before the first success
    std::string error;  // set while no good keys are known
  };
  std::map<std::string, FetchedJwks> jwks_by_uri_;
  std::vector<std::string> recent_rejections_;
  StoreStats stats_;

  std::mutex subscribers_mu_;
  std::vector<std::function<void(uint64_t)>> subscribers_;
};

}  // namespace ferry::controller
