// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// ferryctl: the operator's view of a Ferry mesh, read from a folder of manifests or from a
// running agent's admin API.
// Exit codes: 0 success (for `check`, whatever the decision), 1 error, 2 usage.

#include <charconv>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cli/admin.h"
#include "cli/check.h"
#include "cli/inventory.h"
#include "cli/listing.h"
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

struct UsageError {
  std::string message;
};

struct Options {
  std::string command;
  std::vector<std::string> positional;
  std::optional<std::string> manifests;
  std::optional<std::string> admin;
  bool json = false;
  bool batch = false;
  CheckArgs check;
  StatArgs stat;
};

// One flag of `stat`; an empty message: `arg` is not a flag (a positional argument).
template <typename Value>
std::optional<UsageError> parseStatFlag(std::string_view arg, Value& value, StatArgs& s) {
  auto needs = [&] { return UsageError{std::string(arg) + " needs a value"}; };
  if (arg == "--watch") {
    s.watch = true;
  } else if (arg == "--agents" || arg == "--prometheus" || arg == "-n" || arg == "--namespace" ||
             arg == "--window" || arg == "--count" || arg == "--reporter" || arg == "-o" ||
             arg == "--output") {
    std::optional<std::string> v = value(arg);
    if (!v || v->empty()) {
      return needs();
    }
    if (arg == "--agents") {
      for (absl::string_view a : absl::StrSplit(*v, ',', absl::SkipEmpty())) {
        s.agents.emplace_back(a);
      }
    } else if (arg == "--prometheus") {
      s.prometheus = *v;
    } else if (arg == "-n" || arg == "--namespace") {
      s.options.ns = *v;
    } else if (arg == "--reporter") {
      s.options.reporter = *v;
    } else if (arg == "--window") {
      if (!absl::ParseDuration(*v, &s.window)) {
        return UsageError{"--window must be a duration such as 10s or 1m, not '" + *v + "'"};
      }
    } else if (arg == "--count") {
      auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), s.count);
      if (ec != std::errc() || end != v->data() + v->size() || s.count < 1) {
        return UsageError{"--count must be a number of frames >= 1, not '" + *v + "'"};
      }
    } else if (*v != "json" && *v != "table") {
      return UsageError{"-o must be table or json, not '" + *v + "'"};
    } else {
      s.json = *v == "json";
    }
  } else if (arg.starts_with("-") && arg.size() > 1) {
    return UsageError{"unknown flag '" + std::string(arg) + "' for stat"};
  } else {
    return UsageError{""};
  }
  return std::nullopt;
}

std::optional<UsageError> parse(int argc, char** argv, Options& o) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) {
    return UsageError{"no command given"};
  }
  o.command = args[0];
  bool check = o.command == "check";
  bool agent_only = o.command == "status" || o.command == "certs";
  bool stat = o.command == "stat";
  if (!check && !agent_only && !stat && o.command != "workloads" && o.command != "services" &&
      o.command != "policies" && o.command != "ratelimits" &&
      o.command != "requestauthentications") {
    return UsageError{"unknown command '" + o.command + "'"};
  }
  for (size_t i = 1; i < args.size(); ++i) {
    std::string_view arg = args[i];
    std::optional<std::string_view> inline_value;
    if (arg.starts_with("--") && arg.find('=') != std::string_view::npos) {
      inline_value = arg.substr(arg.find('=') + 1);
      arg = arg.substr(0, arg.find('='));
    }
    auto value = [&](std::string_view flag) -> std::optional<std::string> {
      if (inline_value) {
        return std::string(*inline_value);
      }
      if (i + 1 >= args.size()) {
        return std::nullopt;
      }
      return std::string(args[++i]);
    };
    auto needsValue = [&](std::string_view flag) {
      return UsageError{std::string(flag) + " needs a value"};
    };
    if (stat) {
      std::optional<UsageError> e = parseStatFlag(arg, value, o.stat);
      if (e && e->message.empty()) {
        o.positional.emplace_back(arg);  // not a stat flag
      } else if (e) {
        return e;
      }
      continue;
    }
    if (arg == "--manifests" && !agent_only) {
      if (!(o.manifests = value(arg))) {
        return needsValue(arg);
      }
    } else if (arg == "--admin") {
      if (!(o.admin = value(arg))) {
        return needsValue(arg);
      }
    } else if (arg == "-o" || arg == "--output") {
      auto v = value(arg);
      if (!v) {
        return needsValue(arg);
      }
      if (*v != "json" && *v != "table") {
        return UsageError{"-o must be table or json, not '" + *v + "'"};
      }
      o.json = *v == "json";
    } else if (check && arg == "--port") {
      auto v = value(arg);
      if (!v) {
        return needsValue(arg);
      }
      unsigned port = 0;
      auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), port);
      if (ec != std::errc() || end != v->data() + v->size() || port == 0 || port > 65535) {
        return UsageError{"--port must be a number from 1 to 65535, not '" + *v + "'"};
      }
      o.check.port = static_cast<uint16_t>(port);
    } else if (check && arg == "--host") {
      if (!(o.check.host = value(arg))) {
        return needsValue(arg);
      }
    } else if (check && arg == "--trust-domain") {
      auto v = value(arg);
      if (!v || v->empty()) {
        return needsValue(arg);
      }
      o.check.trust_domain = *v;
    } else if (check && arg == "--batch") {
      o.batch = true;
    } else if (check && arg == "--plaintext") {
      o.check.plaintext = true;
    } else if (check && arg == "--header") {
      auto v = value(arg);
      if (!v) {
        return needsValue(arg);
      }
      auto colon = v->find(':');
      if (colon == std::string::npos || colon == 0) {
        return UsageError{"--header must be NAME:VALUE, not '" + *v + "'"};
      }
      o.check.headers.emplace_back(v->substr(0, colon), v->substr(colon + 1));
    } else if (check && arg == "--request-principal") {
      auto v = value(arg);
      if (!v || v->empty()) {
        return needsValue(arg);
      }
      o.check.request_principal = *v;
    } else if (check && arg == "--claim") {
      auto v = value(arg);
      if (!v) {
        return needsValue(arg);
      }
      auto eq = v->find('=');
      if (eq == std::string::npos || eq == 0) {
        return UsageError{"--claim must be NAME=VALUE, not '" + *v + "'"};
      }
      o.check.claims.emplace_back(v->substr(0, eq), v->substr(eq + 1));
    } else if (check && (arg == "--audience" || arg == "--presenter")) {
      auto v = value(arg);
      if (!v) {
        return needsValue(arg);
      }
      if (arg == "--audience") {
        o.check.audiences.push_back(*v);
      } else {
        o.check.presenter = *v;
      }
    } else if (arg.starts_with("-") && arg.size() > 1) {
      return UsageError{"unknown flag '" + std::string(arg) + "' for " + o.command};
    } else {
      o.positional.emplace_back(arg);
    }
  }
  if (o.manifests && o.admin) {
    return UsageError{"--manifests and --admin are two sources: give one"};
  }
  if (stat) {
    if (o.positional.size() != 1 ||
        (o.positional[0] != "services" && o.positional[0] != "workloads")) {
      return UsageError{"stat takes services or workloads" +
                        (o.positional.empty() ? std::string() : ", not '" + o.positional[0] + "'")};
    }
    o.stat.options.by = o.positional[0] == "workloads" ? StatBy::kWorkload : StatBy::kService;
    if (auto e = validateStatArgs(o.stat)) {
      return UsageError{*e};
    }
    return std::nullopt;
  }
  if (!o.check.request_principal &&
      (!o.check.claims.empty() || !o.check.audiences.empty() || !o.check.presenter.empty())) {
    return UsageError{
        "--claim, --audience and --presenter describe a JWT: give --request-principal"};
  }
  if (!check) {
    if (!o.positional.empty()) {
      return UsageError{o.command + " takes no arguments, got '" + o.positional[0] + "'"};
    }
    return std::nullopt;
  }
  if (o.batch) {
    if (!o.positional.empty()) {
      return UsageError{"check --batch reads its queries from stdin and takes no arguments"};
    }
    return std::nullopt;
  }
  if (o.positional.size() != 2 && o.positional.size() != 4) {
    return UsageError{"check takes <source> <destination> [METHOD PATH], got " +
                      std::to_string(o.positional.size()) + " argument(s)"};
  }
  auto src = parsePodName(o.positional[0]);
  auto dst = parsePodName(o.positional[1]);
  if (!src || !dst) {
    return UsageError{"pods are named namespace/name, not '" +
                      (src ? o.positional[1] : o.positional[0]) + "'"};
  }
  o.check.source = *src;
  o.check.destination = *dst;
  if (o.positional.size() == 4) {
    // CONNECT's target is an authority (--host), so its PATH is empty, as the agent sees it.
    const bool connect = o.positional[2] == "CONNECT";
    if (connect ? !o.positional[3].empty() : !o.positional[3].starts_with("/")) {
      return UsageError{connect ? "CONNECT has no PATH: give \"\" and the target as --host"
                                : "PATH must start with '/', not '" + o.positional[3] + "'"};
    }
    o.check.method = o.positional[2];
    o.check.path = o.positional[3];
  }
  return std::nullopt;
}

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
    std::cout << kUsageText;
    return 0;
  }
  if (argc == 2 && std::string_view(argv[1]) == "--version") {
    std::cout << "ferryctl " << ferry::kVersion << "\n";
    return 0;
  }
  Options o;
  if (auto err = parse(argc, argv, o)) {
    std::cerr << "ferryctl: " << err->message << "\n\n" << kUsageText;
    return kUsage;
  }
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
