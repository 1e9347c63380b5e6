// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// ferry-fake-kube-apiserver: the fake API server as a process, for clients that are not C++
// (kubectl, the Python client). Prints its URL on the first line of stdout, then serves until
// stdin closes or it is signalled.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fakes/kube_api_server/fake_api_server.h"
#include "fakes/kube_api_server/patch.h"

namespace {

constexpr char kUsage[] =
    "usage: ferry-fake-kube-apiserver [--crds=DIR] [--token=TOKEN]\n"
    "  Serves the fake Kubernetes API on 127.0.0.1 (a free port) and prints its URL.\n"
    "  --crds=DIR     CustomResourceDefinition YAML files (e.g. charts/ferry/crds) that give\n"
    "                 the custom kinds their short names, printer columns and schemas\n"
    "  --token=TOKEN  require \"Authorization: Bearer TOKEN\"\n"
    "  Stops when stdin reaches end of file, or on SIGINT/SIGTERM.\n";

int loadCrds(const std::string& dir, std::vector<nlohmann::json>& out) {
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".yaml") {
      files.push_back(entry.path());
    }
  }
  if (ec) {
    std::cerr << "--crds=" << dir << ": " << ec.message() << "\n";
    return 2;
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f);
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<nlohmann::json> crd = ferry::fakes::parseJsonOrYaml(text.str());
    if (!crd.ok() || crd->value("kind", "") != "CustomResourceDefinition") {
      std::cerr << f << ": not a CustomResourceDefinition\n";
      return 2;
    }
    out.push_back(std::move(*crd));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ferry::fakes::FakeApiServerOptions options;
  // A process stands in for a whole cluster: its namespaces exist, and only those.
  options.require_namespaces = true;
  options.initial_namespaces = {"default", "kube-node-lease", "kube-public", "kube-system"};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg.rfind("--crds=", 0) == 0) {
      if (int rc = loadCrds(arg.substr(7), options.crds); rc != 0) {
        return rc;
      }
    } else if (arg.rfind("--token=", 0) == 0) {
      options.required_token = arg.substr(8);
    } else {
      std::cerr << "unknown argument: " << arg << "\n" << kUsage;
      return 2;
    }
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // threads inherit: only sigwait sees them
  auto server = ferry::fakes::FakeApiServer::start(std::move(options));
  if (!server.ok()) {
    std::cerr << server.status() << "\n";
    return 1;
  }
  std::cout << (*server)->url() << std::endl;
  std::thread stdin_watch([] {
    char buf[256];
    while (::read(STDIN_FILENO, buf, sizeof(buf)) > 0) {
    }
    ::kill(::getpid(), SIGTERM);
  });
  stdin_watch.detach();
  int sig = 0;
  sigwait(&signals, &sig);
  return 0;
}
