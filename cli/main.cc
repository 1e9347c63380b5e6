// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// ferryctl: the operator's view of a Ferry mesh, read from a folder of manifests or from a
// running agent's admin API.
// Exit codes: 0 success (for `check`, whatever the decision), 1 error, 2 usage.

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/admin.h"
#include "cli/check.h"
#include "cli/inventory.h"
#include "cli/listing.h"
#include "cli/options.h"
#include "cli/stat.h"
#include "ferry/version.h"

namespace ferry::cli {
namespace {

constexpr int kError = 1;
constexpr int kUsage = 2;

constexpr std::string_view kUsageText = R"(usage:
  ferryctl status [--admin IP:PORT] [-o table|json]
  ferryctl certs  [--admin IP:PORT] [-o table|json]
  ferryctl check <source> <destination> [METHOD PATH] [--manifests DIR | --admin IP:PORT]
                 [-o table|json] [--port N] [--host HOST] [--header NAME:VALUE]...
                 [--trust-domain TD] [--plaintext]
                 [--request-principal ISS/SUB [--claim NAME=VALUE]... [--audience AUD]...
                  [--presenter AZP]]
  ferryctl check --batch [--manifests DIR | --admin IP:PORT]
  ferryctl workloads [--manifests DIR | --admin IP:PORT] [-o table|json]
  ferryctl services  [--manifests DIR | --admin IP:PORT] [-o table|json]
  ferryctl policies  [--manifests DIR | --admin IP:PORT] [-o table|json]
  ferryctl stat services|workloads [--agents IP:PORT[,IP:PORT...] | --prometheus URL]
                 [-n NAMESPACE] [--window DURATION] [--watch [--count N]]
                 [--reporter destination|source] [-o table|json]
  ferryctl ratelimits [--manifests DIR | --admin IP:PORT] [-o table|json]
  ferryctl requestauthentications [--manifests DIR | --admin IP:PORT] [-o table|json]

Without --manifests, state comes from the agent's admin API (--admin, default 127.0.0.1:15000).
<source> and <destination> name pods as namespace/name. check decides what the destination's
agent decides: on a TCP port the connection; on an HTTP port (a Service names it http) the
connection, then the request METHOD PATH when given. --plaintext: the source has no mesh
identity (as a pod outside the mesh). The port defaults to the target port of the Service
selecting the pod.
CONNECT takes an empty PATH and its target as --host HOST:PORT.
--request-principal: the request carries a valid JWT with this iss/sub (as after the agent's
RequestAuthentication); --claim NAME=VALUE adds a string claim (repeat for a list; nested claims
as outer][inner), --audience and --presenter its aud and azp.
check --batch reads one JSON query a line on stdin, {"source": "ns/pod", "destination":
"ns/pod", "method": M, "path": P, "port": N, "host": H, "headers": {...}, "plaintext": B}
(source and destination required), and answers each with one line: check's JSON report or
{"error": "..."}; it exits 1 if any line was an error.
stat: per destination Service or workload, requests a second, success rate (not 5xx, not 0),
p50/p95/p99 latency and TCP connections (open now, opened in the window), from Istio's
metrics. --agents scrapes the agents' metrics endpoints (default 127.0.0.1:15020) twice a
window apart (default 10s); --prometheus http://HOST:PORT asks a Prometheus server (PromQL
over the window). --watch prints a frame every window (one JSON line each with -o json) until
interrupted or --count frames.
)";

// `ferryctl --help`, `ferryctl -h`, `ferryctl help` and `ferryctl <command> --help`.
bool wantsHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h" || (i == 1 && arg == "help")) {
      return true;
    }
  }
  return false;
}

int run(int argc, char** argv) {
  if (wantsHelp(argc, argv)) {
    // `ferryctl <command> --help` adds that command's flags.
    std::cout << kUsageText;
    if (argc > 2) {
      std::cout << commandHelp("\nferryctl " + std::string(argv[1]), argv[1]);
    }
    return 0;
  }
  if (argc == 2 && std::string_view(argv[1]) == "--version") {
    std::cout << "ferryctl " << ferry::kVersion << "\n";
    return 0;
  }
  absl::StatusOr<Options> parsed = parseOptions({argv + 1, argv + argc});
  if (!parsed.ok()) {
    std::cerr << "ferryctl: " << parsed.status().message() << "\n\n" << kUsageText;
    return kUsage;
  }
  const Options& o = *parsed;
  if (o.command == "stat") {
    return runStat(o.stat, std::cout, std::cerr);
  }
  const std::string admin = o.admin.value_or(kDefaultAdmin);
  if (o.command == "status" || o.command == "certs") {
    auto dump = adminGet(admin, "/config_dump");
    auto stats = dump.ok() ? adminGet(admin, "/stats") : dump;
    if (!stats.ok()) {
      std::cerr << "ferryctl: " << stats.status().message() << "\n";
      return kError;
    }
    if (o.command == "status") {
      nlohmann::json status = statusJson(*dump, *stats);
      std::cout << (o.json ? status.dump(2) + "\n" : statusTable(status));
    } else {
      nlohmann::json certs = certsJson(*dump);
      std::cout << (o.json ? certs.dump(2) + "\n" : certsTable(certs));
    }
    return 0;
  }
  absl::StatusOr<Inventory> inv;
  if (o.manifests) {
    inv = loadInventory(*o.manifests, /*refused_policies_fail_closed=*/o.command == "check");
  } else if (auto dump = adminGet(admin, "/config_dump"); dump.ok()) {
    inv = inventoryFromConfigDump(*dump);
  } else {
    inv = dump.status();
  }
  if (!inv.ok()) {
    std::cerr << "ferryctl: " << inv.status().message() << "\n";
    return kError;
  }
  if (o.command == "check" && o.batch) {
    return checkBatch(*inv, std::cin, std::cout) == 0 ? 0 : kError;
  }
  if (o.command == "check") {
    auto report = runCheck(*inv, o.check);
    if (!report.ok()) {
      std::cerr << "ferryctl: " << report.status().message() << "\n";
      return kError;
    }
    std::cout << (o.json ? checkJson(*report).dump(2) + "\n" : checkTable(*report));
  } else if (o.command == "workloads") {
    std::cout << (o.json ? workloadsJson(*inv).dump(2) + "\n" : workloadsTable(*inv));
  } else if (o.command == "services") {
    std::cout << (o.json ? servicesJson(*inv).dump(2) + "\n" : servicesTable(*inv));
  } else if (o.command == "ratelimits") {
    std::cout << (o.json ? rateLimitsJson(*inv).dump(2) + "\n" : rateLimitsTable(*inv));
  } else if (o.command == "requestauthentications") {
    std::cout << (o.json ? requestAuthenticationsJson(*inv).dump(2) + "\n"
                         : requestAuthenticationsTable(*inv));
  } else {
    std::cout << (o.json ? policiesJson(*inv).dump(2) + "\n" : policiesTable(*inv));
  }
  return 0;
}

}  // namespace
}  // namespace ferry::cli

int main(int argc, char** argv) {
  return ferry::cli::run(argc, argv);
}
