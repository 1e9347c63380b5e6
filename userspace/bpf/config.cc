// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "bpf/config.h"

#include "absl/strings/str_cat.h"

namespace ferry::bpf {
namespace {

absl::Status checkRange(const char* field, uint32_t value, uint32_t min, uint32_t max) {
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("BpfConfig.", field, " = ", value, ": must be between ", min, " and ", max));
  }
  return absl::OkStatus();
}

absl::Status checkAbsolute(const char* field, const std::string& path, bool required) {
  if (path.empty()) {
    return required ? absl::InvalidArgumentError(
                          absl::StrCat("BpfConfig.", field, " is required (an absolute path)"))
                    : absl::OkStatus();
  }
  if (path.front() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("BpfConfig.", field, " = \"", path, "\": must be an absolute path"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status validateConfig(const BpfConfig& config) {
  if (absl::Status s = checkAbsolute("pin_dir", config.pin_dir, true); !s.ok()) {
    return s;
  }
  if (absl::Status s = checkAbsolute("pod_cgroup", config.pod_cgroup, true); !s.ok()) {
    return s;
  }
  if (absl::Status s = checkAbsolute("agent_cgroup", config.agent_cgroup, false); !s.ok()) {
    return s;
  }
  if (absl::Status s = checkAbsolute("bpffs_root", config.bpffs_root, true); !s.ok()) {
    return s;
  }
  if (config.pin_dir.rfind(config.bpffs_root + "/", 0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("BpfConfig.pin_dir = \"", config.pin_dir,
                                                   "\": must be a folder under bpffs_root \"",
                                                   config.bpffs_root, "\""));
  }
  if (config.outbound_port == 0) {
    return absl::InvalidArgumentError("BpfConfig.outbound_port must not be 0");
  }
  // Upper bounds keep a typo from asking the kernel for gigabytes of map memory.
  const uint32_t kMaxPods = 1u << 16;
  const uint32_t kMaxTable = 1u << 20;
  const uint32_t kMaxConns = 1u << 24;
  if (absl::Status s = checkRange("max_pods", config.max_pods, 1, kMaxPods); !s.ok()) {
    return s;
  }
  if (absl::Status s = checkRange("max_cidrs", config.max_cidrs, 1, kMaxTable); !s.ok()) {
    return s;
  }
  if (absl::Status s = checkRange("max_ports", config.max_ports, 1, kMaxTable); !s.ok()) {
    return s;
  }
  if (absl::Status s = checkRange("max_connections", config.max_connections, 16, kMaxConns);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = checkRange("max_spliced", config.max_spliced, 16, kMaxConns); !s.ok()) {
    return s;
  }
  return absl::OkStatus();
}

}  // namespace ferry::bpf
