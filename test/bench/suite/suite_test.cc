// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Runs the benchmark suite end to end (bench/run.sh --tiny: quick mode with tiny durations) and
// checks its output is complete and sane. Not a timing assertion: any positive, finite value
// passes; what fails is a case or a measurement missing, zero, or not a number.

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "harness/process.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::bench {
namespace {
namespace fs = std::filesystem;

std::map<std::string, std::map<std::string, double>> readSummary(const std::string& path) {
  std::map<std::string, std::map<std::string, double>> out;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string c, metric, median;
    std::getline(ss, c, ',');
    std::getline(ss, metric, ',');
    std::getline(ss, median, ',');
    out[c][metric] = std::stod(median);
  }
  return out;
}

TEST_CASE("bench/run.sh --tiny measures every case with sane values", "[privileged][bench]") {
  FERRY_REQUIRE_ROOT();
  const std::string out = fs::temp_directory_path() / ("ferry-bench-" + std::to_string(::getpid()));
  fs::remove_all(out);
  auto r = harness::runProcess({},
                               {FERRY_SOURCE_DIR "/bench/run.sh", "--tiny", "--no-build", "--build",
                                FERRY_BINARY_DIR, "--out", out},
                               absl::Seconds(300));
  REQUIRE_OK(r);
  INFO("stdout:\n" << r->out << "\nstderr:\n" << r->err);
  REQUIRE(r->exit_code == 0);
  auto summary = readSummary(out + "/summary.csv");
  std::stringstream meta;
  meta << std::ifstream(out + "/meta.txt").rdbuf();
  // Every case must have been measured, the L7 one included: a case the pre-flight check left
  // out is named in meta.txt and its rows are missing below.
  INFO("meta.txt:\n" << meta.str());
  CHECK(meta.str().find(" left out: ") == std::string::npos);
  // The L7 case's pre-flight proved the policy bites: a request outside the ACL was refused.
  CHECK(meta.str().find("ferry_l7: requests outside the HTTP ACL are refused") !=
        std::string::npos);

  const std::vector<std::string> http = {"lat_p50_us", "lat_p90_us", "lat_p99_us", "lat_p999_us",
                                         "lat_rps",    "sat_rps",    "conn_rps"};
  const std::vector<std::string> iperf = {"tput1_gbps", "tput8_gbps"};
  const std::vector<std::string> busy = {"sat_busy_pct", "conn_busy_pct"};
  const std::vector<std::string> iperf_busy = {"tput1_busy_pct", "tput8_busy_pct"};
  const std::vector<std::string> top_thread = {"sat_top_thread_pct"};
  const std::vector<std::string> iperf_top_thread = {"tput1_top_thread_pct",
                                                     "tput8_top_thread_pct"};
  const std::vector<std::string> cpu = {"sat_cpu_us_per_req", "conn_cpu_us_per_req",
                                        "tput1_cpu_ms_per_gb", "tput8_cpu_ms_per_gb"};
  const std::vector<std::string> memory = {"rss_idle_mib", "rss_anon_idle_mib", "rss_held_mib"};
  const std::vector<std::string> load_kernel = {"sat_kernel_pct", "conn_kernel_pct"};
  const std::vector<std::string> iperf_kernel = {"tput1_kernel_pct", "tput8_kernel_pct"};
  struct Expect {
    std::string id;
    bool has_iperf, has_proxy, has_memory;
    // Same node, the agents relay only each pair's first connection (the direct path carries
    // the rest app to app), so their CPU per request may round to nothing.
    bool proxy_mostly_idle = false;
  };
  for (const Expect& e : std::vector<Expect>{{"no_mesh", true, false, false},
                                             {"ferry_l4", true, true, true},
                                             {"ferry_l7", false, true, false},
                                             {"ferry_l7_routed", false, true, false},
                                             {"ferry_l7_routed_local", false, true, false},
                                             {"ferry_same_node", true, true, false, true},
                                             {"stunnel", true, true, true},
                                             {"haproxy", true, true, true}}) {
    std::vector<std::string> want = http;
    if (e.has_iperf) {
      want.insert(want.end(), iperf.begin(), iperf.end());
    }
    if (e.has_proxy) {
      want.insert(want.end(), cpu.begin(), cpu.begin() + 2);
      if (e.has_iperf) {
        want.insert(want.end(), cpu.begin() + 2, cpu.end());
      }
    }
    // A share of a run's rows for this case, in [0, max]: above 0 unless `may_be_zero` (a
    // mostly idle agent may use no tick).
    auto checkShares = [&](const std::vector<std::string>& load,
                           const std::vector<std::string>& iperf_rows, double max,
                           bool may_be_zero) {
      std::vector<std::string> rows = load;
      if (e.has_iperf) {
        rows.insert(rows.end(), iperf_rows.begin(), iperf_rows.end());
      }
      for (const std::string& metric : rows) {
        INFO(e.id << " " << metric);
        REQUIRE(summary[e.id].count(metric) == 1);
        CHECK(summary[e.id][metric] <= max);
        if (may_be_zero) {
          CHECK(summary[e.id][metric] >= 0);
        } else {
          CHECK(summary[e.id][metric] > 0);
        }
      }
    };
    // The machine's busy share, of all cores: above 0 (the load generator at least) and at most
    // 100 (busy ticks are some of all ticks).
    checkShares(busy, iperf_busy, 100, false);
    if (e.has_proxy) {
      // The busiest agent thread, of one core: a thread runs on one core at a time (the margin
      // is the tick counters' rounding against the wall clock). Ferry's cases only: a peer's
      // threads may end with their connection, before the second reading.
      if (e.id.rfind("ferry_", 0) == 0) {
        checkShares(top_thread, iperf_top_thread, 105, e.proxy_mostly_idle);
      }
      // The kernel's share of the proxies' CPU (a relay always makes system calls).
      checkShares(load_kernel, iperf_kernel, 100, e.proxy_mostly_idle);
    }
    if (e.has_memory) {
      want.insert(want.end(), memory.begin(), memory.end());
    }
    for (const std::string& metric : want) {
      INFO(e.id << " " << metric);
      REQUIRE(summary[e.id].count(metric) == 1);
      const double v = summary[e.id][metric];
      CHECK(std::isfinite(v));
      const bool cpu_metric = std::find(cpu.begin(), cpu.end(), metric) != cpu.end();
      if (e.proxy_mostly_idle && cpu_metric) {
        CHECK(v >= 0);
      } else {
        CHECK(v > 0);
      }
    }
    if (e.id == "ferry_same_node") {
      // How many of the latency run's 4 connections the kernel carried app to app: a count of
      // them, never more (the agent counts each direct connect once).
      INFO(e.id << " lat_direct_connections");
      REQUIRE(summary[e.id].count("lat_direct_connections") == 1);
      CHECK(summary[e.id]["lat_direct_connections"] >= 0);
      CHECK(summary[e.id]["lat_direct_connections"] <= 4);
    }
    // Errors are counted, not hidden: the latency runs at a fixed rate must have none.
    INFO(e.id << " lat_errors");
    REQUIRE(summary[e.id].count("lat_errors") == 1);
    CHECK(summary[e.id]["lat_errors"] == 0);
  }
  for (const char* file : {"raw.csv", "summary.csv", "table.md", "meta.txt", "latency.png",
                           "throughput.png", "cpu.png", "cipher.txt"}) {
    INFO(file);
    CHECK(fs::file_size(out + "/" + file) > 0);
  }
  // The cipher's speed both ways (bytes/s), and from it and the run the most a user-space TLS
  // relay pair could move on this machine.
  std::ifstream cipher(out + "/cipher.txt");
  std::map<std::string, double> speed;
  std::string direction;
  double bytes_per_second = 0;
  while (cipher >> direction >> bytes_per_second) {
    speed[direction] = bytes_per_second;
  }
  CHECK(speed["encrypt"] > 0);
  CHECK(speed["decrypt"] > 0);
  std::ifstream table_file(out + "/table.md");
  std::stringstream table;
  table << table_file.rdbuf();
  INFO(table.str());
  CHECK(table.str().find("| the most a relay pair can move with every core busy (Gbit/s) | ") !=
        std::string::npos);
  CHECK(table.str().find("no floor") == std::string::npos);
  fs::remove_all(out);
}

}  // namespace
}  // namespace ferry::bench
