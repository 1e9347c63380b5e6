// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "bpf/features.h"

#include <bpf/libbpf.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bpf/sys.h"

namespace ferry::bpf {

absl::Status FeatureReport::status() const {
  if (ok()) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("the kernel lacks what Ferry's capture needs: ", absl::StrJoin(missing, "; ")));
}

FeatureReport probeFeatures(const FeatureProbeTargets& targets) {
  FeatureReport report;
  if (::access(targets.btf_path.c_str(), R_OK) != 0) {
    report.missing.push_back(absl::StrCat(
        "BTF (", targets.btf_path, " not readable: CONFIG_DEBUG_INFO_BTF=y needed for CO-RE)"));
  }
  if (!isCgroup2(targets.cgroup_path)) {
    report.missing.push_back(
        absl::StrCat("cgroup v2 (", targets.cgroup_path, " is not a cgroup2 mount)"));
  }
  struct ProgType {
    bpf_prog_type type;
    const char* name;
  };
  const ProgType kProgs[] = {
      {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup/connect4+6 programs (outbound capture)"},
      {BPF_PROG_TYPE_SOCK_OPS, "sockops programs (original destination, splice)"},
      {BPF_PROG_TYPE_SK_MSG, "sk_msg programs (splice)"},
      {BPF_PROG_TYPE_SK_LOOKUP, "sk_lookup programs (inbound steering, Linux 5.9)"},
  };
  for (const ProgType& p : kProgs) {
    if (libbpf_probe_bpf_prog_type(p.type, nullptr) != 1) {
      report.missing.push_back(p.name);
    }
  }
  struct MapType {
    bpf_map_type type;
    const char* name;
  };
  const MapType kMaps[] = {
      {BPF_MAP_TYPE_SOCKHASH, "sockhash maps (splice)"},
      {BPF_MAP_TYPE_SOCKMAP, "sockmap maps (inbound listeners)"},
      {BPF_MAP_TYPE_LPM_TRIE, "LPM trie maps (mesh CIDRs)"},
      {BPF_MAP_TYPE_LRU_HASH, "LRU hash maps (original destinations)"},
      {BPF_MAP_TYPE_PERCPU_ARRAY, "per-CPU array maps (counters)"},
  };
  for (const MapType& m : kMaps) {
    if (libbpf_probe_bpf_map_type(m.type, nullptr) != 1) {
      report.missing.push_back(m.name);
    }
  }
  struct Helper {
    bpf_prog_type type;
    bpf_func_id helper;
    const char* name;
  };
  const Helper kHelpers[] = {
      {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_netns_cookie,
       "bpf_get_netns_cookie in cgroup/connect (Linux 5.7)"},
      {BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_get_netns_cookie,
       "bpf_get_netns_cookie in sockops (Linux 5.15)"},
      {BPF_PROG_TYPE_SK_MSG, BPF_FUNC_get_netns_cookie,
       "bpf_get_netns_cookie in sk_msg (Linux 5.15)"},
      {BPF_PROG_TYPE_SK_LOOKUP, BPF_FUNC_sk_assign, "bpf_sk_assign in sk_lookup (Linux 5.9)"},
  };
  for (const Helper& h : kHelpers) {
    if (libbpf_probe_bpf_helper(h.type, h.helper, nullptr) != 1) {
      report.missing.push_back(h.name);
    }
  }
  return report;
}

}  // namespace ferry::bpf
