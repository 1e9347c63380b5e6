// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
//
// The loader's small contacts with the rest of the system: bpffs and cgroup v2. Addresses and
// network namespaces are userspace/net's.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::bpf {

// Mounts bpffs at `root` unless one is mounted there already (creating the folder if needed).
absl::Status ensureBpffs(const std::string& root);
// mkdir -p.
absl::Status makeDirs(const std::string& path);
// Regular file names in a folder (empty when the folder does not exist).
std::vector<std::string> listDir(const std::string& path);

// True when `path` is on a cgroup v2 filesystem.
bool isCgroup2(const std::string& path);
// The cgroup v2 directory this process runs in, from /proc/self/cgroup and the mount table.
absl::StatusOr<std::string> selfCgroupPath();
// A cgroup's id, as bpf_link_info reports it (the inode number of its directory).
absl::StatusOr<uint64_t> cgroupId(const std::string& path);

}  // namespace ferry::bpf
