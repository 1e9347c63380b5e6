// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The suite's measurements and their interleaving. Each writes rows to raw.csv; a failed run
// is noted (meta.txt) and leaves its rows out, so the report shows the gap.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "e2e/observe.h"
#include "suite/peers.h"
#include "suite/procfs.h"
#include "suite/suite.h"

namespace ferry::bench {
namespace {

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Whether the proxies' threads outlive a measurement, so that reading them before and after
// finds the busiest: the agents' workers do; stunnel's thread per connection ends with it.
bool persistentThreads(const Case& c) {
  return absl::StartsWith(c.id, "ferry_") && !c.proxies.empty();
}

constexpr int kIperfBusyAttempts = 5;
// A low rate with DWARF stacks: the agent is built without frame pointers.
constexpr char kProfileHz[] = "199";
constexpr char kProfileStack[] = "dwarf,16384";
}  // namespace

std::unique_ptr<harness::Process> Suite::startProfile(int round, const Case& c,
                                                      const std::string& measurement) {
  if (!options_.profile || c.proxies.empty() || round != 1) {
    return nullptr;
  }
  const std::string dir = options_.out_dir + "/profiles";
  std::filesystem::create_directories(dir);
  const std::string pids = absl::StrJoin(c.proxies, ",");
  const std::string base = absl::StrCat(dir, "/", c.id, "-", measurement);
  auto perf = harness::spawnProcess({},
                                    {"perf", "record", "-F", kProfileHz, "--call-graph",
                                     kProfileStack, "-p", pids, "-o", base + ".data"},
                                    base + ".log");
  if (!perf.ok()) {
    note(absl::StrCat(c.id, " ", measurement, ": perf record: ", perf.status().message()));
    return nullptr;
  }
  return *std::move(perf);
}

void Suite::stopProfile(std::unique_ptr<harness::Process> perf) {
  if (!perf) {
    return;
  }
  perf->signal(SIGINT);
  if (auto code = perf->wait(absl::Seconds(60)); !code.ok() || *code != 0) {
    note("perf record did not end cleanly: " + perf->log());
  }
}

namespace {
// The C library this process (and every proxy started from the same system) maps.
absl::StatusOr<std::string> libcPath() {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    const size_t slash = line.find('/');
    if (slash != std::string::npos && absl::StrContains(line, "/libc.so")) {
      return line.substr(slash);
    }
  }
  return absl::NotFoundError("libc.so is not mapped in /proc/self/maps");
}
}  // namespace

absl::Status Suite::addMallocProbe() {
  auto listed = harness::runProcess({}, {"perf", "probe", "--list"}, absl::Seconds(60));
  if (listed.ok() && listed->exit_code == 0 && absl::StrContains(listed->out, kMallocProbe)) {
    return absl::OkStatus();
  }
  auto libc = libcPath();
  if (!libc.ok()) {
    return libc.status();
  }
  auto added =
      harness::runProcess({}, {"perf", "probe", "-x", *libc, "--add", "malloc"}, absl::Seconds(60));
  if (!added.ok()) {
    return added.status();
  }
  if (added->exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("perf probe -x ", *libc, " --add malloc: ", added->out, added->err));
  }
  malloc_probe_added_ = true;
  return absl::OkStatus();
}

std::unique_ptr<harness::Process> Suite::startSyscallCount(const Case& c, const std::string& path) {
  if ((!options_.syscalls && !options_.allocations) || c.proxies.empty()) {
    return nullptr;
  }
  const std::string pids = absl::StrJoin(c.proxies, ",");
  std::vector<std::string> argv = {"perf", "stat", "-x,"};
  if (options_.allocations) {
    argv.insert(argv.end(), {"-e", kMallocProbe});
  }
  if (options_.syscalls) {
    // Every call entered, and every call that returned -EAGAIN (-11).
    argv.insert(argv.end(), {"-e", "raw_syscalls:sys_enter", "-e", "raw_syscalls:sys_exit",
                             "--filter", "ret == -11"});
  }
  argv.insert(argv.end(), {"-p", pids, "-o", path});
  auto perf = harness::spawnProcess({}, argv, path + ".log");
  if (!perf.ok()) {
    note(absl::StrCat(c.id, " perf stat: ", perf.status().message()));
    return nullptr;
  }
  return *std::move(perf);
}

void Suite::endSyscallCount(std::unique_ptr<harness::Process> perf, int round, const Case& c,
                            const std::string& path, const std::string& prefix, double requests) {
  if (!perf) {
    return;
  }
  // perf stat writes its counts when SIGINT ends it, and exits with that signal's status.
  perf->signal(SIGINT);
  if (auto code = perf->wait(absl::Seconds(60)); !code.ok()) {
    note(absl::StrCat(c.id, " perf stat did not end: ", code.status().message()));
    return;
  }
  // CSV lines "count,,event,...".
  std::ifstream in(path);
  double entered = -1, eagain = -1, mallocs = -1;
  for (std::string line; std::getline(in, line);) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ',');
    double n = 0;
    if (f.size() < 3 || !absl::SimpleAtod(f[0], &n)) {
      continue;
    }
    if (f[2] == "raw_syscalls:sys_enter") {
      entered = n;
    } else if (f[2] == "raw_syscalls:sys_exit") {
      eagain = n;
    } else if (f[2] == kMallocProbe) {
      mallocs = n;
    }
  }
  const bool missing =
      (options_.syscalls && (entered < 0 || eagain < 0)) || (options_.allocations && mallocs < 0);
  if (missing || requests <= 0) {
    note(absl::StrCat(c.id, " perf stat: no counts in ", path, ": ", perf->log()));
    return;
  }
  if (options_.syscalls) {
    row(round, c, prefix + "_syscalls_per_req", entered / requests);
    row(round, c, prefix + "_eagain_per_req", eagain / requests);
  }
  if (options_.allocations) {
    row(round, c, prefix + "_mallocs_per_req", mallocs / requests);
  }
}

void Suite::measureLatency(int round, const Case& c) {
  std::vector<std::string> args = {"run", "--target=" + c.http_target,
                                   absl::StrCat("--rate=", options_.rate),
                                   absl::StrCat("--connections=", options_.latency_connections),
                                   absl::StrCat("--seconds=", options_.latency_seconds)};
  args.insert(args.end(), c.loadgen_args.begin(), c.loadgen_args.end());
  // Same node: how many of the run's connections the kernel carried app to app (the rest went
  // through the agent, whose hops cost latency), counted by the client node's agent.
  const bool same_node = c.id == "ferry_same_node";
  const double direct_before =
      same_node ? e2e::bpfEvent(mesh_->metricsPort(2), "connect_direct") : 0;
  auto out = loadgen(c.client, args, options_.latency_seconds);
  if (same_node) {
    const double direct = e2e::bpfEvent(mesh_->metricsPort(2), "connect_direct") - direct_before;
    row(round, c, "lat_direct_connections", direct);
    if (direct != options_.latency_connections) {
      note(absl::StrCat("round ", round, " ", c.id, " latency: ", direct, " of ",
                        options_.latency_connections, " connections went direct"));
    }
  }
  auto j = out.ok() ? nlohmann::json::parse(*out, nullptr, false) : nlohmann::json();
  if (!out.ok() || j.is_discarded()) {
    ++failures_;
    note(absl::StrCat("round ", round, " ", c.id,
                      " latency failed: ", out.ok() ? *out : std::string(out.status().message())));
    return;
  }
  for (const char* p : {"p50", "p90", "p99", "p999"}) {
    row(round, c, absl::StrCat("lat_", p, "_us"), j[absl::StrCat(p, "_us")].get<double>());
  }
  row(round, c, "lat_rps", j["rps"].get<double>());
  row(round, c, "lat_errors",
      static_cast<double>(j["errors"].get<uint64_t>() + j["bad_status"].get<uint64_t>()));
}

void Suite::measureThroughput(int round, const Case& c, int streams) {
  if (c.iperf_host.empty()) {
    return;
  }
  // A profile starts a few milliseconds into the run (perf attaching): a 2-5 s run hides that.
  auto perf = startProfile(round, c, absl::StrCat("tput", streams));
  const int seconds = std::max(1, static_cast<int>(std::lround(options_.load_seconds)));
  // The iperf3 server takes one test at a time and learns that the previous one ended only when
  // its control connection closes, which through a proxy can lag the client's exit: "busy" is
  // asked again, a bounded number of times.
  absl::StatusOr<double> bps = absl::UnavailableError("iperf3 not run");
  absl::StatusOr<MachineTicks> machine_before = absl::UnavailableError("not read");
  absl::StatusOr<CpuTicks> cpu_before = absl::UnavailableError("not read");
  absl::StatusOr<std::map<pid_t, long long>> threads_before = absl::UnavailableError("not read");
  auto started = std::chrono::steady_clock::now();
  for (int attempt = 0; attempt < kIperfBusyAttempts; ++attempt) {
    if (attempt > 0) {
      absl::SleepFor(absl::Seconds(1));
    }
    machine_before = machineTicks();
    cpu_before = cpuTicks(c.proxies);
    threads_before = threadTicks(c.proxies);
    started = std::chrono::steady_clock::now();
    auto out =
        mesh_->run(c.client,
                   {"/usr/bin/iperf3", "-c", c.iperf_host, "-p", std::to_string(c.iperf_port), "-t",
                    std::to_string(seconds), "-P", std::to_string(streams), "-J"},
                   absl::Seconds(seconds + 60));
    bps = out.ok() ? iperfBitsPerSecond(*out) : out.status();
    if (bps.ok() || !absl::StrContains(bps.status().message(), "server is busy")) {
      break;
    }
  }
  auto machine_after = machineTicks();
  auto cpu_after = cpuTicks(c.proxies);
  auto threads_after = threadTicks(c.proxies);
  const double elapsed = secondsSince(started);
  stopProfile(std::move(perf));
  if (!bps.ok()) {
    ++failures_;
    note(absl::StrCat("round ", round, " ", c.id, " iperf3 -P ", streams,
                      " failed: ", bps.status().message()));
    return;
  }
  const std::string prefix = absl::StrCat("tput", streams);
  row(round, c, prefix + "_gbps", *bps / 1e9);
  // Whether the machine had cores to spare: a run with both cores busy cannot go faster by
  // spreading its work, only by doing less per byte (the proxies' CPU per GB).
  if (machine_before.ok() && machine_after.ok()) {
    row(round, c, prefix + "_busy_pct", busyPercent(*machine_before, *machine_after));
  }
  if (!c.proxies.empty() && cpu_before.ok() && cpu_after.ok() && *bps > 0) {
    const double gigabytes = *bps / 8 * seconds / 1e9;
    row(round, c, prefix + "_cpu_ms_per_gb",
        cpuSecondsBetween(*cpu_before, *cpu_after) * 1e3 / gigabytes);
    // How much of it the kernel spent (socket copies, TCP on both ends of each hop): the part
    // of a relay's cost per byte that no change in user space removes.
    row(round, c, prefix + "_kernel_pct", kernelPercent(*cpu_before, *cpu_after));
  }
  if (persistentThreads(c) && threads_before.ok() && threads_after.ok()) {
    row(round, c, prefix + "_top_thread_pct",
        busiestThreadPercent(*threads_before, *threads_after, elapsed));
  }
}

void Suite::measureSaturation(int round, const Case& c, bool new_connections) {
  const int concurrency =
      new_connections ? options_.new_connection_concurrency : options_.saturation_connections;
  std::vector<std::string> args = {"run", "--target=" + c.http_target, "--rate=0",
                                   absl::StrCat("--connections=", concurrency),
                                   absl::StrCat("--seconds=", options_.load_seconds)};
  if (new_connections) {
    args.push_back("--new-connections");
  }
  args.insert(args.end(), c.loadgen_args.begin(), c.loadgen_args.end());
  // Each proxy's own CPU too (for Ferry: the client-side agent, then the server-side one).
  std::vector<absl::StatusOr<double>> each_before;
  for (pid_t pid : c.proxies) {
    each_before.push_back(cpuSeconds({pid}));
  }
  auto perf = startProfile(round, c, new_connections ? "conn" : "sat");
  const std::string prefix = new_connections ? "conn" : "sat";
  const std::string count_path =
      absl::StrCat(options_.out_dir, "/syscalls-", c.id, "-", prefix, "-", round, ".csv");
  auto count = startSyscallCount(c, count_path);
  auto before = cpuTicks(c.proxies);
  auto machine_before = machineTicks();
  auto threads_before = threadTicks(c.proxies);
  const auto started = std::chrono::steady_clock::now();
  auto out = loadgen(c.client, args, options_.load_seconds);
  const double elapsed = secondsSince(started);
  auto threads_after = threadTicks(c.proxies);
  auto machine_after = machineTicks();
  auto after = cpuTicks(c.proxies);
  stopProfile(std::move(perf));
  auto j = out.ok() ? nlohmann::json::parse(*out, nullptr, false) : nlohmann::json();
  const std::string what = new_connections ? "new connections" : "saturation";
  if (!out.ok() || j.is_discarded() || !before.ok() || !after.ok()) {
    ++failures_;
    note(absl::StrCat("round ", round, " ", c.id, " ", what,
                      " failed: ", out.ok() ? *out : std::string(out.status().message())));
    return;
  }
  const double completed = j["completed"].get<double>();
  endSyscallCount(std::move(count), round, c, count_path, prefix, completed);
  row(round, c, prefix + "_rps", j["rps"].get<double>());
  if (machine_before.ok() && machine_after.ok()) {
    row(round, c, prefix + "_busy_pct", busyPercent(*machine_before, *machine_after));
  }
  if (persistentThreads(c) && threads_before.ok() && threads_after.ok()) {
    row(round, c, prefix + "_top_thread_pct",
        busiestThreadPercent(*threads_before, *threads_after, elapsed));
  }
  row(round, c, prefix + "_errors",
      static_cast<double>(j["errors"].get<uint64_t>() + j["bad_status"].get<uint64_t>()));
  if (!c.proxies.empty() && completed > 0) {
    row(round, c, prefix + "_cpu_us_per_req", cpuSecondsBetween(*before, *after) * 1e6 / completed);
    row(round, c, prefix + "_kernel_pct", kernelPercent(*before, *after));
    for (size_t i = 0; i < c.proxies.size(); ++i) {
      auto each_after = cpuSeconds({c.proxies[i]});
      if (each_before[i].ok() && each_after.ok()) {
        row(round, c, absl::StrCat(prefix, "_cpu_us_per_req_proxy", i + 1),
            (*each_after - *each_before[i]) * 1e6 / completed);
      }
    }
  }
}

void Suite::noteRssByMapping(const Case& c, const char* when) {
  constexpr size_t kShown = 25;
  auto by = rssKibByMapping(c.proxies.front());
  if (!by.ok()) {
    note(absl::StrCat(c.id, " ", when, " RSS by mapping: ", by.status().message()));
    return;
  }
  std::string line = absl::StrCat(c.id, " ", when, " RSS by mapping (KiB, proxy 1):");
  long long rest = 0;
  for (size_t i = 0; i < by->size(); ++i) {
    if (i < kShown) {
      absl::StrAppend(&line, " ", (*by)[i].first, "=", (*by)[i].second);
    } else {
      rest += (*by)[i].second;
    }
  }
  note(absl::StrCat(line, " rest(", by->size() > kShown ? by->size() - kShown : 0, ")=", rest));
}

void Suite::measureMemory(const Case& c) {
  if (c.hold_target.empty() || c.proxies.empty()) {
    return;
  }
  auto rssMean = [&](auto read) -> absl::StatusOr<double> {
    double sum = 0;
    for (pid_t pid : c.proxies) {
      absl::StatusOr<long long> b = read(pid);
      if (!b.ok()) {
        return b.status();
      }
      sum += static_cast<double>(*b);
    }
    return sum / static_cast<double>(c.proxies.size());
  };
  // Ferry's agents hold both legs of each connection too, but as one process per node with
  // room for 10,000; a peer's client process stops at kPeerHeldConnections (descriptor limit).
  const bool peer = c.id == "stunnel" || c.id == "haproxy";
  const int count =
      peer ? std::min(options_.idle_connections, kPeerHeldConnections) : options_.idle_connections;
  auto idle = rssMean(rssBytes);
  auto idle_anon = rssMean(rssAnonBytes);
  noteRssByMapping(c, "idle");
  auto holder =
      mesh_->cluster().spawn(c.client, {options_.loadgen, "hold", "--target=" + c.hold_target,
                                        absl::StrCat("--connections=", count)});
  bool held = false;
  const int polls = 600 + count / 10;  // 60 s + 10 ms per connection
  for (int i = 0; holder.ok() && i < polls && !held; ++i) {
    held = (*holder)->log().find("held ") != std::string::npos;
    if (!held && !(*holder)->running()) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!idle.ok() || !idle_anon.ok() || !held) {
    ++failures_;
    note(absl::StrCat(c.id, " memory: could not hold ", count, " connections: ",
                      holder.ok() ? (*holder)->log() : std::string(holder.status().message()),
                      idle.ok() ? "" : idle.status().message(),
                      idle_anon.ok() ? "" : idle_anon.status().message()));
    return;
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // let buffers settle
  auto loaded = rssMean(rssBytes);
  // Beside the idle one: what the held connections added, by mapping (code mapped back for
  // them is in the per-connection figure too).
  noteRssByMapping(c, "held");
  holder->reset();  // closes the connections
  std::this_thread::sleep_for(std::chrono::seconds(2));
  if (!loaded.ok()) {
    ++failures_;
    note(absl::StrCat(c.id, " memory: ", loaded.status().message()));
    return;
  }
  row(0, c, "rss_idle_mib", *idle / (1024 * 1024));
  row(0, c, "rss_anon_idle_mib", *idle_anon / (1024 * 1024));
  row(0, c, "rss_held_mib", *loaded / (1024 * 1024));
  row(0, c, "rss_held_connections", count);
  row(0, c, "rss_bytes_per_conn", (*loaded - *idle) / count);
}

absl::Status Suite::run() {
  if (options_.profile) {
    note("profiled: perf record on each case's proxies in round 1 (its CPU figures include perf)");
  }
  // Memory first, while every proxy is fresh: "idle" means after start-up and one check.
  for (const Case& c : cases_) {
    measureMemory(c);
  }
  for (int round = 1; round <= options_.rounds; ++round) {
    // Each metric runs every case back to back, starting from a different case each round, so
    // drift in the machine's load spreads over all cases instead of landing on one.
    std::vector<const Case*> order;
    for (size_t i = 0; i < cases_.size(); ++i) {
      order.push_back(&cases_[(i + round - 1) % cases_.size()]);
    }
    note(absl::StrCat("round ", round, " of ", options_.rounds, ", load average ", loadAverage()));
    for (const Case* c : order) {
      measureLatency(round, *c);
    }
    for (int streams : {1, 8}) {
      for (const Case* c : order) {
        measureThroughput(round, *c, streams);
      }
    }
    for (bool new_connections : {false, true}) {
      for (const Case* c : order) {
        measureSaturation(round, *c, new_connections);
      }
    }
  }
  note("load average at end: " + loadAverage());
  if (failures_ > 0) {
    return absl::InternalError(absl::StrCat(failures_, " measurements failed (see meta.txt)"));
  }
  return absl::OkStatus();
}

}  // namespace ferry::bench
