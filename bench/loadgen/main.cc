// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// ferry-loadgen: the benchmark suite's HTTP/1.1 client (open or closed loop), origin server
// and idle-connection holder. See bench/loadgen/README.md.

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/numbers.h"
#include "loadgen/client.h"
#include "loadgen/server.h"

namespace {

constexpr char kUsage[] =
    "usage:\n"
    "  ferry-loadgen serve [--listen=0.0.0.0] [--port=8080] [--body=1024] [--threads=1]\n"
    "  ferry-loadgen run --target=IP:PORT[/path] [--rate=R (0: closed loop)] [--connections=4]\n"
    "                    [--seconds=10 | --requests=N (open loop: N requests at R)]\n"
    "                    [--new-connections] [--header-file=F (request i carries line i of F,\n"
    "                    \"Name: value\", in turn)]   (prints one JSON line)\n"
    "  ferry-loadgen hold --target=IP:PORT[/path] --connections=N\n"
    "                    (opens N connections, one request each, prints \"held N\", waits)\n";

int usage(const std::string& why) {
  std::fprintf(stderr, "ferry-loadgen: %s\n%s", why.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ferry::loadgen;
  if (argc < 2) {
    return usage("missing command");
  }
  const std::string command = argv[1];
  if (command == "--help" || command == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::map<std::string, std::string> flags;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      return usage("unexpected argument \"" + a + "\"");
    }
    const size_t eq = a.find('=');
    flags[a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2)] =
        eq == std::string::npos ? "true" : a.substr(eq + 1);
  }
  auto number = [&](const std::string& name, double fallback, double* out) {
    auto it = flags.find(name);
    if (it == flags.end()) {
      *out = fallback;
      return true;
    }
    return absl::SimpleAtod(it->second, out);
  };
  raiseFileLimit();

  if (command == "serve") {
    double port, body, threads;
    if (!number("port", 8080, &port) || !number("body", 1024, &body) ||
        !number("threads", 1, &threads)) {
      return usage("bad number");
    }
    ServerOptions options{
        .address = flags.count("listen") ? flags["listen"] : "0.0.0.0",
        .port = static_cast<uint16_t>(port),
        .body_bytes = static_cast<size_t>(body),
        .threads = static_cast<int>(threads),
    };
    auto server = Server::start(options);
    if (!server.ok()) {
      std::fprintf(stderr, "ferry-loadgen: %s\n", server.status().ToString().c_str());
      return 1;
    }
    std::printf("serving on port %u\n", (*server)->port());
    std::fflush(stdout);
    for (;;) {
      ::pause();
    }
  }

  if (!flags.count("target")) {
    return usage("--target is required");
  }
  auto target = parseTarget(flags["target"]);
  if (!target.ok()) {
    return usage(std::string(target.status().message()));
  }

  if (command == "run") {
    LoadOptions options;
    options.target = *target;
    double connections;
    if (!number("rate", 0, &options.rate) || !number("connections", 4, &connections) ||
        !number("seconds", 10, &options.seconds)) {
      return usage("bad number");
    }
    options.connections = static_cast<int>(connections);
    options.new_connection_per_request = flags.count("new-connections") > 0;
    double requests;
    if (!number("requests", 0, &requests) || requests < 0) {
      return usage("bad --requests");
    }
    options.requests = static_cast<uint64_t>(requests);
    if (flags.count("header-file")) {
      std::ifstream in(flags["header-file"]);
      for (std::string line; std::getline(in, line);) {
        if (!line.empty()) {
          options.header_lines.push_back(line);
        }
      }
      if (!in.eof() || options.header_lines.empty()) {
        return usage("cannot read header lines from " + flags["header-file"]);
      }
    }
    auto result = runLoad(options);
    if (!result.ok()) {
      std::fprintf(stderr, "ferry-loadgen: %s\n", result.status().ToString().c_str());
      return 1;
    }
    const Histogram& h = result->latency;
    nlohmann::json j = {
        {"completed", result->completed},
        {"errors", result->errors},
        {"bad_status", result->bad_status},
        {"connects", result->connects},
        {"seconds", result->seconds},
        {"rps", result->rps()},
        {"p50_us", h.percentile(0.50) / 1e3},
        {"p90_us", h.percentile(0.90) / 1e3},
        {"p99_us", h.percentile(0.99) / 1e3},
        {"p999_us", h.percentile(0.999) / 1e3},
        {"max_us", h.max() / 1e3},
        {"span_min_s", result->span_min_s},
        {"span_max_s", result->span_max_s},
        {"retry_after", result->retry_after},
        {"retry_after_values", result->retry_after_values},
    };
    nlohmann::json& by_status = j["status"] = nlohmann::json::object();
    for (const auto& [code, n] : result->status) {
      by_status[std::to_string(code)] = n;
    }
    std::printf("%s\n", j.dump().c_str());
    return result->completed > 0 ? 0 : 1;
  }

  if (command == "hold") {
    double count;
    if (!number("connections", 1000, &count) || count < 1) {
      return usage("bad --connections");
    }
    auto fds = holdConnections(*target, static_cast<int>(count));
    if (!fds.ok()) {
      std::fprintf(stderr, "ferry-loadgen: %s\n", fds.status().ToString().c_str());
      return 1;
    }
    std::printf("held %zu\n", fds->size());
    std::fflush(stdout);
    for (;;) {
      ::pause();
    }
  }
  return usage("unknown command \"" + command + "\"");
}
