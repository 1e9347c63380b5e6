// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// ferry-cni: invoked by the container runtime with the CNI environment and config on stdin.

#include <unistd.h>

#include <iostream>
#include <iterator>

#include "cni/plugin.h"

extern char** environ;

int main() {
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
