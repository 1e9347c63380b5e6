// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The local cluster: Kubernetes-shaped nodes and pods on one Linux machine (DESIGN.md, "The
// local cluster"). A pod is a network namespace plus a cgroup v2 directory, wired by a veth
// pair to one bridge that lives in a private "switch" namespace, so nothing is added to the
// host's own network. Pods get addresses in the cluster's pod range and routes to that range
// only; the service VIP range is unroutable inside a pod unless the capture rewrites it.
//
// Every name starts with the project prefix ("ferry-<id>" / "ferry<id>"), and each cluster
// records its owner in a state file, so cleanupLeftovers() can remove what a killed test left.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "harness/process.h"

namespace ferry::harness {

inline constexpr char kPodCidrV4[] = "10.244.0.0/16";
inline constexpr char kPodCidrV6[] = "fd00:244::/64";
inline constexpr char kServiceCidrV4[] = "10.96.0.0/16";
inline constexpr char kServiceCidrV6[] = "fd00:96::/112";
inline constexpr char kStateDir[] = "/run/ferry-harness";
inline constexpr char kCgroupRoot[] = "/sys/fs/cgroup/unified";
inline constexpr char kBpffsRoot[] = "/sys/fs/bpf";

struct ClusterSpec {
  int nodes = 2;
  int pods_per_node = 2;
  std::string id;     // 4 lowercase hex characters; empty picks a fresh one
  bool owned = true;  // false: survives this process (the CLI's `up`); `down` removes it
};

struct Pod {
  int node = 0;            // 1-based
  int index = 0;           // 1-based within the node
  std::string name;        // "n1p2"
  std::string netns_name;  // "ferry-<id>-n1p2", as `ip netns` lists it
  std::string netns_path;  // /run/netns/<netns_name>
  std::string cgroup_path;
  std::string ipv4;  // 10.244.<node>.<10+index>
  std::string ipv6;  // fd00:244::<node>:<10+index>
  Placement placement() const { return {netns_path, cgroup_path}; }
};

struct Node {
  int index = 0;
  std::string name;               // "node1"
  std::string cgroup_path;        // the subtree holding the node's pods (capture attaches here)
  std::string agent_cgroup_path;  // where the node's agent runs: outside the pods' subtree
  std::string bpffs_dir;          // the node's pin folder
  std::string pod_cidr_v4;        // 10.244.<node>.0/24
  std::vector<Pod> pods;
};

class Cluster {
 public:
  // Builds the cluster; on failure removes whatever it had made.
  static absl::StatusOr<std::unique_ptr<Cluster>> create(const ClusterSpec& spec);
  // Opens a cluster some other process created (from its state file), without owning it.
  static absl::StatusOr<std::unique_ptr<Cluster>> open(const std::string& id);

  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;
  // Tears the cluster down when this object owns it.
  ~Cluster();

  // Kills every process in the cluster's cgroups and removes its namespaces, links, cgroups,
  // pin folders and state file. Safe to call twice.
  absl::Status teardown();

  const std::string& id() const { return id_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const Node& node(int index) const { return nodes_.at(index - 1); }
  const Pod& pod(int node, int index) const { return nodes_.at(node - 1).pods.at(index - 1); }
  // "n1p2" -> the pod, or NotFound.
  absl::StatusOr<const Pod*> findPod(const std::string& name) const;
  // The namespace holding the bridge: run a packet capture here to see traffic between pods.
  const std::string& switchNetnsPath() const { return switch_netns_path_; }
  const std::string& bridgeName() const { return bridge_; }

  // Runs argv inside the pod (its netns and cgroup) to completion.
  absl::StatusOr<ProcessResult> run(const Pod& pod, const std::vector<std::string>& argv,
                                    absl::Duration timeout = absl::Seconds(60),
                                    const std::string& input = "") const;
  // Starts argv inside the pod in the background; it is killed at teardown at the latest.
  absl::StatusOr<std::unique_ptr<Process>> spawn(const Pod& pod,
                                                 const std::vector<std::string>& argv) const;
  // Starts a node's agent: host network namespace, the node's agent cgroup.
  absl::StatusOr<std::unique_ptr<Process>> spawnAgent(const Node& node,
                                                      const std::vector<std::string>& argv) const;
  // A fresh log file path inside the cluster's scratch folder.
  std::string logPath(const std::string& stem) const;
  const std::string& scratchDir() const { return scratch_dir_; }

 private:
  Cluster() = default;
  absl::Status build(const ClusterSpec& spec);
  absl::Status writeState() const;

  std::string id_;
  bool owned_ = false;
  bool torn_down_ = false;
  std::string switch_netns_path_;
  std::string bridge_;
  std::string scratch_dir_;
  std::string cgroup_root_;
  std::vector<Node> nodes_;
  mutable int log_counter_ = 0;
};

// What cleanupLeftovers() found (and removed).
struct Leftovers {
  std::vector<std::string> netns, links, cgroups, pins, state_files;
  bool empty() const {
    return netns.empty() && links.empty() && cgroups.empty() && pins.empty() && state_files.empty();
  }
  std::string describe() const;
};

// Lists everything on this machine that carries the project prefix. With `stale_only`, only
// what belongs to clusters whose owning process is gone (or that have no state file at all).
absl::StatusOr<Leftovers> findLeftovers(bool stale_only);
// Removes what findLeftovers(stale_only) reports and returns it.
absl::StatusOr<Leftovers> cleanupLeftovers(bool stale_only);

}  // namespace ferry::harness
