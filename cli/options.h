// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// ferryctl's command line: a command, its positional arguments and its flags. The flags are
// Abseil flags (cli/options.cc) read by the binaries' one flags library (userspace/flags), each
// command taking its own set.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/check.h"
#include "cli/stat.h"

namespace ferry::cli {

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

// The options of `args` (no program name: the command first), or the usage error (its message).
absl::StatusOr<Options> parseOptions(const std::vector<std::string>& args);

// The flags `command` takes, with their help, after `head`; "" for no such command.
std::string commandHelp(const std::string& head, std::string_view command);

}  // namespace ferry::cli
