// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// ferry-cni: a chained CNI plugin (CNI spec 1.0) that registers pods with the node agent over
// the enrollment socket (userspace/enroll). Everything but process I/O lives here so tests can
// drive it in-process as well as through the binary.
//
// Plugin-specific config keys (all optional):
//   "socket": path of the agent's enrollment socket (default /run/ferry/agent.sock)
//   "timeout_ms":   how long to wait for the agent (default 5000)

#include <map>
#include <string>

namespace ferry::cni {

inline constexpr char kSpecVersion[] = "1.0.0";

// CNI spec error codes used here.
enum ErrorCode : int {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnvironment = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
};

struct Invocation {
  std::map<std::string, std::string> env;  // CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, ...
  std::string stdin_config;
};

struct Outcome {
  int exit_code = 0;
  std::string out;  // stdout: the result, the version info or a CNI error object
  std::string err;  // stderr: diagnostics for the runtime's logs
};

Outcome run(const Invocation& invocation);

}  // namespace ferry::cni
