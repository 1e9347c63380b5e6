// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// ferry-cni: invoked by the container runtime with the CNI environment and config on stdin.

#include <unistd.h>

#include <iostream>
#include <iterator>
#include <string_view>

#include "cni/plugin.h"
#include "ferry/version.h"

extern char** environ;

constexpr char kUsage[] =
    "usage: ferry-cni (run by the container runtime, not by hand)\n"
    "A chained CNI plugin (spec 1.0: ADD, DEL, CHECK, VERSION). The runtime sets CNI_COMMAND,\n"
    "CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME and CNI_ARGS (K8S_POD_NAME, K8S_POD_NAMESPACE,\n"
    "K8S_POD_UID) and writes the network configuration on stdin, with prevResult. Config keys:\n"
    "\"socket\" (the agent's enrollment socket, default /run/ferry/agent.sock), \"timeout_ms\".\n";

int main(int argc, char** argv) {
  // Runtimes pass no arguments (libcni runs the plugin with argv[0] only).
  if (argc > 1 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
    std::cout << kUsage;
    return 0;
  }
  if (argc > 1 && std::string_view(argv[1]) == "--version") {
    std::cout << "ferry-cni " << ferry::kVersion << "\n";
    return 0;
  }
  ferry::cni::Invocation inv;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    if (kv.rfind("CNI_", 0) == 0) {
      size_t eq = kv.find('=');
      inv.env[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
    }
  }
  // VERSION may come without stdin; reading an empty or closed stdin is fine.
  if (inv.env["CNI_COMMAND"] != "VERSION" || !::isatty(STDIN_FILENO)) {
    inv.stdin_config.assign(std::istreambuf_iterator<char>(std::cin),
                            std::istreambuf_iterator<char>());
  }
  ferry::cni::Outcome outcome = ferry::cni::run(inv);
  std::cout << outcome.out;
  if (!outcome.out.empty()) {
    std::cout << "\n";
  }
  std::cerr << outcome.err;
  return outcome.exit_code;
}
