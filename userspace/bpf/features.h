// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ferry::bpf {

// What the start-up probe looks at. Defaults are the real system; tests point them elsewhere
// to see the report name what is missing.
struct FeatureProbeTargets {
  std::string btf_path = "/sys/kernel/btf/vmlinux";
  std::string cgroup_path = "/sys/fs/cgroup/unified";  // must be on cgroup v2
};

struct FeatureReport {
  std::vector<std::string> missing;  // one line per missing feature, saying what needs it

  bool ok() const { return missing.empty(); }
  // FailedPrecondition listing every missing feature, or OK.
  absl::Status status() const;
};

// Probes every kernel feature capture depends on: BTF, cgroup v2, the program types (cgroup
// sock_addr, sockops, sk_msg, sk_lookup), the map types (sockhash, sockmap, LPM trie, LRU hash,
// per-CPU array) and the helpers the programs call (netns cookie in each hook, sk_assign).
FeatureReport probeFeatures(const FeatureProbeTargets& targets = {});

}  // namespace ferry::bpf
