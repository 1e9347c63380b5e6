// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// ferry-bench-suite: runs every case and measurement, writes raw.csv and meta.txt into --out.
// Normally started by bench/run.sh, which also makes the table and the plots.

#include <sys/resource.h>

#include <fstream>
#include <iostream>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "harness/cluster.h"
#include "suite/suite.h"

namespace {

constexpr char kUsage[] =
    "usage: ferry-bench-suite --out=DIR [--mode=quick|full|tiny] [--rounds=N]\n"
    "         [--latency-seconds=S] [--load-seconds=S] [--idle-connections=N]\n"
    "         "
    "[--cases=no_mesh,ferry_l4,ferry_l7,ferry_l7_routed,ferry_l7_routed_local,ferry_same_node,"
    "stunnel,haproxy]\n"
    "         [--l7-rate-limit=1]  (a never-binding RateLimitPolicy on the L7 case)\n"
    "         [--agent-flags=--a=1,--b=2]  (extra ferry-agent flags on both nodes)\n"
    "         [--l7-jwt=RS256|PS256|ES256|ES384]  (adds ferry_l7_jwt, ferry_l7_jwt_new)\n"
    "         [--profile=1]  (perf record of each case's proxies: <out>/profiles/)\n"
    "         [--syscalls=1]  (the proxies' system calls and EAGAIN failures per request)\n"
    "         [--allocations=1]  (the proxies' calls to malloc per request; slows the run)\n"
    "       (root: builds a local cluster; see bench/README.md)\n";

// 10,000 held connections are 20,000+ descriptors in one proxy (HAProxy's client side holds
// both legs); root may raise the hard limit up to fs.nr_open, and every child inherits it.
void raiseFileLimits() {
  rlim_t limit = 1 << 20;
  std::ifstream nr_open("/proc/sys/fs/nr_open");
  rlim_t nr = 0;
  if (nr_open >> nr && nr < limit) {
    limit = nr;
  }
  rlimit rl{limit, limit};
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    std::cerr << "ferry-bench-suite: cannot raise RLIMIT_NOFILE to " << limit << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  ferry::bench::SuiteOptions o;
  o.loadgen = FERRY_LOADGEN_BIN;
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    }
    const size_t eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos) {
      std::cerr << "ferry-bench-suite: bad argument \"" << a << "\"\n" << kUsage;
      return 2;
    }
    flags[a.substr(2, eq - 2)] = a.substr(eq + 1);
  }
  // Presets first, then explicit flags override them.
  o.mode = flags.count("mode") ? flags["mode"] : "quick";
  if (o.mode == "full") {
    o.rounds = 3;
    o.latency_seconds = 10;
    o.load_seconds = 5;
    o.idle_connections = 10000;
  } else if (o.mode == "tiny") {
    o.rounds = 1;
    o.latency_seconds = 0.5;
    o.load_seconds = 1;
    o.idle_connections = 100;
  } else if (o.mode != "quick") {
    std::cerr << "ferry-bench-suite: --mode must be quick, full or tiny\n" << kUsage;
    return 2;
  }
  bool ok = flags.count("out") > 0;
  o.out_dir = flags["out"];
  auto num = [&](const char* name, auto* out) {
    if (flags.count(name)) {
      double v = 0;
      ok = ok && absl::SimpleAtod(flags[name], &v) && v > 0;
      *out = static_cast<std::remove_pointer_t<decltype(out)>>(v);
    }
  };
  num("rounds", &o.rounds);
  num("latency-seconds", &o.latency_seconds);
  num("load-seconds", &o.load_seconds);
  num("idle-connections", &o.idle_connections);
  if (flags.count("cases")) {
    o.only_cases = absl::StrSplit(flags["cases"], ',', absl::SkipEmpty());
  }
  o.l7_rate_limit = flags.count("l7-rate-limit") > 0 && flags["l7-rate-limit"] == "1";
  o.l7_jwt = flags.count("l7-jwt") ? flags["l7-jwt"] : "";
  o.profile = flags.count("profile") > 0 && flags["profile"] == "1";
  o.syscalls = flags.count("syscalls") > 0 && flags["syscalls"] == "1";
  o.allocations = flags.count("allocations") > 0 && flags["allocations"] == "1";
  if (flags.count("agent-flags")) {
    o.agent_flags = absl::StrSplit(flags["agent-flags"], ',', absl::SkipEmpty());
  }
  if (!ok) {
    std::cerr << "ferry-bench-suite: --out is required and numbers must be positive\n" << kUsage;
    return 2;
  }
  raiseFileLimits();
  // A killed earlier run leaves namespaces behind; clear those whose owner is gone.
  (void)ferry::harness::cleanupLeftovers(/*stale_only=*/true);
  ferry::bench::Suite suite(o);
  if (auto s = suite.setUp(); !s.ok()) {
    std::cerr << "ferry-bench-suite: setup failed: " << s << "\n";
    return 1;
  }
  if (auto s = suite.run(); !s.ok()) {
    std::cerr << "ferry-bench-suite: " << s << "\n";
    return 1;
  }
  return 0;
}
