// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// ferry-cluster: the local-cluster harness from the shell (demo, benchmarks, debugging).
//
//   ferry-cluster up [--nodes N] [--pods M] [--id ID]   create; prints the id and the pods
//   ferry-cluster show ID                                the nodes, pods, addresses, paths
//   ferry-cluster exec ID POD -- CMD [ARGS...]           run CMD inside POD (netns + cgroup)
//   ferry-cluster down ID                                tear one cluster down
//   ferry-cluster leftovers [--stale]                    list prefixed leftovers (exit 1 if any)
//   ferry-cluster cleanup [--stale]                      remove them (all, or only stale ones)
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "harness/cluster.h"
#include "net/netns.h"

namespace {

using ferry::harness::Cluster;

constexpr char kUsage[] =
    "usage: ferry-cluster up [--nodes N] [--pods M] [--id ID]\n"
    "       ferry-cluster show ID\n"
    "       ferry-cluster exec ID POD -- CMD [ARGS...]\n"
    "       ferry-cluster down ID\n"
    "       ferry-cluster leftovers [--stale]\n"
    "       ferry-cluster cleanup [--stale]\n";

int usage() {
  std::cerr << kUsage;
  return 2;
}

int fail(const absl::Status& status) {
  std::cerr << "ferry-cluster: " << status.message() << "\n";
  return 1;
}

void show(const Cluster& cluster) {
  std::cout << "cluster " << cluster.id() << "  switch netns " << cluster.switchNetnsPath()
            << "  bridge " << cluster.bridgeName() << "\n";
  for (const auto& node : cluster.nodes()) {
    std::cout << node.name << "  pods " << node.pod_cidr_v4 << "  cgroup " << node.cgroup_path
              << "  agent cgroup " << node.agent_cgroup_path << "  bpffs " << node.bpffs_dir
              << "\n";
    for (const auto& pod : node.pods) {
      std::cout << "  " << pod.name << "  " << pod.ipv4 << "  " << pod.ipv6 << "  "
                << pod.netns_path << "  " << pod.cgroup_path << "\n";
    }
  }
}

int up(const std::vector<std::string>& args) {
  ferry::harness::ClusterSpec spec;
  spec.owned = false;
  for (size_t i = 0; i < args.size(); ++i) {
    int* target = args[i] == "--nodes"  ? &spec.nodes
                  : args[i] == "--pods" ? &spec.pods_per_node
                                        : nullptr;
    if (i + 1 >= args.size()) {
      return usage();
    }
    if (target != nullptr) {
      if (!absl::SimpleAtoi(args[++i], target)) {
        std::cerr << "ferry-cluster: " << args[i - 1] << " takes a number, not '" << args[i]
                  << "'\n";
        return 2;
      }
    } else if (args[i] == "--id") {
      spec.id = args[++i];
    } else {
      return usage();
    }
  }
  auto cluster = Cluster::create(spec);
  if (!cluster.ok()) {
    return fail(cluster.status());
  }
  show(**cluster);
  return 0;
}

int leftovers(bool cleanup, bool stale_only) {
  auto found = cleanup ? ferry::harness::cleanupLeftovers(stale_only)
                       : ferry::harness::findLeftovers(stale_only);
  if (!found.ok()) {
    return fail(found.status());
  }
  std::cout << (cleanup ? "removed: " : "found: ") << found->describe() << "\n";
  return cleanup || found->empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    return usage();
  }
  if (args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return 0;
  }
  std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "up") {
    return up(rest);
  }
  if (cmd == "leftovers" || cmd == "cleanup") {
    bool stale = !rest.empty() && rest[0] == "--stale";
    return leftovers(cmd == "cleanup", stale);
  }
  if (rest.empty()) {
    return usage();
  }
  auto cluster = Cluster::open(rest[0]);
  if (!cluster.ok()) {
    return fail(cluster.status());
  }
  if (cmd == "show") {
    show(**cluster);
    return 0;
  }
  if (cmd == "down") {
    absl::Status s = (*cluster)->teardown();
    return s.ok() ? 0 : fail(s);
  }
  if (cmd == "exec") {
    if (rest.size() < 4 || rest[2] != "--") {
      return usage();
    }
    auto pod = (*cluster)->findPod(rest[1]);
    if (!pod.ok()) {
      return fail(pod.status());
    }
    // Replace this process so the command keeps the terminal, signals and exit status.
    std::vector<std::string> command(rest.begin() + 3, rest.end());
    std::vector<char*> cargv;
    for (auto& s : command) {
      cargv.push_back(s.data());
    }
    cargv.push_back(nullptr);
    auto scope = ferry::net::ScopedNetns::enter((*pod)->netns_path);
    if (!scope.ok()) {
      return fail(scope.status());
    }
    FILE* procs = std::fopen(((*pod)->cgroup_path + "/cgroup.procs").c_str(), "w");
    if (procs == nullptr || std::fprintf(procs, "%d", getpid()) < 0 || std::fclose(procs) != 0) {
      std::cerr << "ferry-cluster: cannot join cgroup " << (*pod)->cgroup_path << "\n";
      return 1;
    }
    ::execvp(cargv[0], cargv.data());
    std::perror(("ferry-cluster: exec " + command[0]).c_str());
    return 127;
  }
  return usage();
}
