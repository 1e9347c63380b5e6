// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The benchmark suite: a two-node local cluster with Ferry agents (test/e2e's Mesh), origin
// servers, a stunnel pair and an HAProxy pair, then every measurement for every case,
// interleaved round by round, written as rows of raw.csv (see bench/README.md).

#include <sys/types.h>

#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "e2e/mesh.h"
#include "harness/process.h"
#include "suite/jwt_cases.h"

namespace ferry::bench {

// The uprobe on libc's malloc that --allocations counts (`perf probe -x <libc> --add malloc`).
inline constexpr char kMallocProbe[] = "probe_libc:malloc";

struct SuiteOptions {
  std::string out_dir;
  std::string loadgen;  // the ferry-loadgen binary
  std::string mode = "quick";
  int rounds = 1;
  double latency_seconds = 4;  // each fixed-rate latency run
  double load_seconds = 2;     // each saturation, new-connection and iperf3 run
  int idle_connections = 2000;
  double rate = 1000;  // requests/s of the latency runs
  int latency_connections = 4;
  int saturation_connections = 16;
  int new_connection_concurrency = 8;
  std::vector<std::string> only_cases;  // empty: all
  // Also puts a never-binding RateLimitPolicy (total and per identity) on the L7 case's pod, so
  // that its CPU per request includes the rate-limit checks (issue 21).
  bool l7_rate_limit = false;
  // An algorithm (RS256, PS256, ES256, ES384): adds the JWT cases of jwt_cases.h.
  std::string l7_jwt;
  // Records the proxies of each case with `perf record` during its throughput and saturation
  // runs, into <out>/profiles/<case>-<measurement>.data (bench/flame turns them into SVGs).
  // Profiling costs CPU: figures of a profiled run are not comparable with others.
  bool profile = false;
  // Counts the proxies' system calls during each saturation run (`perf stat` of the
  // raw_syscalls tracepoints): rows <sat|conn>_syscalls_per_req and _eagain_per_req (calls that
  // failed with EAGAIN: a read or write that found nothing to do). Counting costs little CPU,
  // but the figures of such a run are still kept apart from others.
  bool syscalls = false;
  // Counts the proxies' calls to malloc during the same runs (`perf stat` of a uprobe on libc's
  // malloc, which operator new and OpenSSL's allocations go through): rows
  // <sat|conn>_mallocs_per_req. Each call then traps into the kernel, so the run is slow, but the
  // count is exact.
  bool allocations = false;
  // Extra ferry-agent flags for both nodes (e.g. --stream-resume=off), to compare a setting
  // against the default in runs side by side.
  std::vector<std::string> agent_flags;
};

struct Case {
  std::string id;
  std::string label;
  harness::Pod client;
  std::string http_target;  // ip:port/path as ferry-loadgen takes it
  std::string iperf_host;   // empty: no throughput rows for this case
  uint16_t iperf_port = 0;
  std::string hold_target;                // empty: no memory rows for this case
  std::vector<pid_t> proxies;             // whose CPU and memory count
  std::vector<std::string> loadgen_args;  // added to each `ferry-loadgen run` of the case
};

class Suite {
 public:
  explicit Suite(SuiteOptions options) : options_(std::move(options)) {}
  ~Suite();
  absl::Status setUp();
  absl::Status run();

 private:
  absl::Status startServers();
  absl::Status startPeers();
  absl::Status applyL7Policy();
  absl::Status checkCases();
  absl::Status checkCase(const Case& c);
  absl::StatusOr<std::unique_ptr<harness::Process>> spawnListening(
      const harness::Pod& pod, const std::vector<std::string>& argv, uint16_t port,
      const std::string& address = "");
  absl::StatusOr<std::string> loadgen(const harness::Pod& pod, std::vector<std::string> args,
                                      double seconds);

  void measureLatency(int round, const Case& c);
  void measureThroughput(int round, const Case& c, int streams);
  void measureSaturation(int round, const Case& c, bool new_connections);
  void measureMemory(const Case& c);
  // meta.txt: the RSS of the case's first proxy per mapped file, largest first, idle or holding
  // the idle connections.
  void noteRssByMapping(const Case& c, const char* when);  // when: "idle", "held"
  // perf record on the case's proxies until the returned process is stopped (null: not
  // profiling, or a case without proxies).
  std::unique_ptr<harness::Process> startProfile(int round, const Case& c,
                                                 const std::string& measurement);
  void stopProfile(std::unique_ptr<harness::Process> perf);
  // `perf stat` of the proxies' system calls and/or mallocs into `path` (null: --syscalls and
  // --allocations are off).
  std::unique_ptr<harness::Process> startSyscallCount(const Case& c, const std::string& path);
  // Stops it and writes <prefix>_syscalls_per_req and <prefix>_eagain_per_req, and/or
  // <prefix>_mallocs_per_req.
  void endSyscallCount(std::unique_ptr<harness::Process> perf, int round, const Case& c,
                       const std::string& path, const std::string& prefix, double requests);

  void row(int round, const Case& c, const std::string& metric, double value);
  void note(const std::string& line);

  // --allocations: adds the uprobe probe_libc:malloc unless it exists (then removed at the end).
  absl::Status addMallocProbe();

  SuiteOptions options_;
  bool malloc_probe_added_ = false;
  std::unique_ptr<e2e::Mesh> mesh_;
  std::vector<std::unique_ptr<harness::Process>> processes_;
  std::vector<Case> cases_;
  std::optional<JwtCases> jwt_;
  std::ofstream csv_;
  std::ofstream meta_;
  int failures_ = 0;
};

}  // namespace ferry::bench
