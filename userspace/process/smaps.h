// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// /proc/<pid>/smaps read as mappings: the one reader for the agent (process.h, which unmaps
// file pages) and the benchmark suite (which sums resident memory per file).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ferry::process {

// One mapping: its header line "start-end perms offset dev inode [path]" and the counters read.
struct SmapsMapping {
  uintptr_t start = 0;
  uintptr_t end = 0;
  std::string perms;  // "r-xp": read, write, execute, p(rivate) or s(hared)
  uint64_t inode = 0;
  std::string path;  // "/usr/lib/x86_64-linux-gnu/libc.so.6", "[heap]"; empty: anonymous
  uint64_t rss_kib = 0;
  uint64_t anonymous_kib = 0;  // pages the process owns: written copies of a file's pages too

  // Private, read-only and from a file with a path: the code and constants of the binary and
  // its libraries (not the vDSO, not a shared mapping such as a BPF map).
  bool privateReadOnlyFile() const;
};

// Every mapping of smaps text, in its order. An error when the text has no mapping header or a
// header's address range does not parse: it is not smaps text.
absl::StatusOr<std::vector<SmapsMapping>> parseSmaps(absl::string_view text);

// parseSmaps of /proc/<pid>/smaps; pid 0: this process (/proc/self/smaps).
absl::StatusOr<std::vector<SmapsMapping>> readSmaps(int pid = 0);

}  // namespace ferry::process
