// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// What the suite reads from /proc and from tool output. Parsers take text, so they are tested
// without a process or a tool.

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::bench {

// utime + stime of a whole process (its exited threads included) from /proc/<pid>/stat text,
// in clock ticks. The command name may hold spaces and parentheses: fields start after the
// last ')'.
absl::StatusOr<long long> cpuTicksFromStat(const std::string& stat);
// VmRSS from /proc/<pid>/status text, in KiB.
absl::StatusOr<long long> rssKibFromStatus(const std::string& status);
// RssAnon from /proc/<pid>/status text, in KiB: the part of VmRSS that is the process's own
// (heap, stacks, written library data), without the shared library pages it maps.
absl::StatusOr<long long> rssAnonKibFromStatus(const std::string& status);
// Rss summed per mapped file (its base name) from /proc/<pid>/smaps text, in KiB, largest
// first; mappings without a file count as "[anon]" (the kernel's own names, like [heap] and
// [stack], are kept).
absl::StatusOr<std::vector<std::pair<std::string, long long>>> rssKibByMappingFromSmaps(
    const std::string& smaps);
// end.sum_received.bits_per_second from `iperf3 -J` output.
absl::StatusOr<double> iperfBitsPerSecond(const std::string& json);

// The live versions: CPU seconds and RSS bytes summed over `pids`.
absl::StatusOr<double> cpuSeconds(const std::vector<pid_t>& pids);
absl::StatusOr<long long> rssBytes(pid_t pid);
absl::StatusOr<long long> rssAnonBytes(pid_t pid);
absl::StatusOr<std::vector<std::pair<std::string, long long>>> rssKibByMapping(pid_t pid);

// The machine, for the results' header: CPU model, cores, kernel, load averages.
std::string machineDescription();
std::string loadAverage();

}  // namespace ferry::bench
