// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// What the suite reads from /proc and from tool output. Parsers take text, so they are tested
// without a process or a tool.

#include <sys/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::bench {

// utime and stime of a whole process (its exited threads included) from /proc/<pid>/stat text,
// in clock ticks. The command name may hold spaces and parentheses: fields start after the
// last ')'.
struct CpuTicks {
  long long user = 0;
  long long system = 0;  // in the kernel on the process's behalf: its syscalls, and the TCP
                         // receive work a loopback or veth send runs in the sender's context
  long long total() const { return user + system; }
};
absl::StatusOr<CpuTicks> cpuTicksFromStat(const std::string& stat);
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
// The whole machine's CPU time from /proc/stat text (its first, "cpu" line), in clock ticks
// summed over all cores: `busy` is every state but idle and iowait (guest time is already in
// user and nice, so not counted twice).
struct MachineTicks {
  long long busy = 0;
  long long total = 0;
};
absl::StatusOr<MachineTicks> machineTicksFromStat(const std::string& stat);
// end.sum_received.bits_per_second from `iperf3 -J` output.
absl::StatusOr<double> iperfBitsPerSecond(const std::string& json);

// The live versions: CPU ticks, CPU seconds and RSS bytes summed over `pids`.
absl::StatusOr<CpuTicks> cpuTicks(const std::vector<pid_t>& pids);
absl::StatusOr<double> cpuSeconds(const std::vector<pid_t>& pids);
// The kernel's share of the CPU time between two readings, in percent (0 when none passed):
// what no user-space change can remove.
double kernelPercent(const CpuTicks& before, const CpuTicks& after);
// CPU seconds between two readings.
double cpuSecondsBetween(const CpuTicks& before, const CpuTicks& after);
absl::StatusOr<MachineTicks> machineTicks();
// CPU clock ticks of each thread of `pids` (/proc/<pid>/task/<tid>/stat), by thread id.
absl::StatusOr<std::map<pid_t, long long>> threadTicks(const std::vector<pid_t>& pids);
// The busiest thread between two readings, as a share of one core over `seconds`, in percent:
// a figure near 100 says one thread was the limit however idle the other cores were.
double busiestThreadPercent(const std::map<pid_t, long long>& before,
                            const std::map<pid_t, long long>& after, double seconds);
// The share of all cores' time that was busy between two readings, in percent (0 when no tick
// passed).
double busyPercent(const MachineTicks& before, const MachineTicks& after);
absl::StatusOr<long long> rssBytes(pid_t pid);
absl::StatusOr<long long> rssAnonBytes(pid_t pid);
absl::StatusOr<std::vector<std::pair<std::string, long long>>> rssKibByMapping(pid_t pid);

// The machine, for the results' header: CPU model, cores, kernel, load averages.
std::string machineDescription();
std::string loadAverage();

}  // namespace ferry::bench
