// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Processes placed in a pod (its network namespace and its cgroup) or on a node.

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::harness {

// Where a child process runs: which network namespace (empty: the caller's) and which
// cgroup v2 directory (empty: the caller's).
struct Placement {
  std::string netns_path;
  std::string cgroup_path;
};

struct ProcessResult {
  int exit_code = -1;  // the exit status, or 128 + signal number
  std::string out;
  std::string err;
};

// A background child process. Destroying it kills it (SIGKILL) and reaps it.
class Process {
 public:
  Process(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  pid_t pid() const { return pid_; }
  // stdout and stderr of the process go to this file.
  const std::string& logPath() const { return log_path_; }
  std::string log() const;
  bool running();
  void signal(int sig);
  // Waits for exit; returns the exit code (128 + signal when killed) or DeadlineExceeded.
  absl::StatusOr<int> wait(absl::Duration timeout);

 private:
  pid_t pid_;
  std::string log_path_;
  bool reaped_ = false;
  int exit_code_ = -1;
};

// Runs argv to completion with `input` on stdin; kills it and fails after `timeout`.
absl::StatusOr<ProcessResult> runProcess(const Placement& where,
                                         const std::vector<std::string>& argv,
                                         absl::Duration timeout, const std::string& input = "");

// Starts argv in the background with stdout and stderr appended to `log_path`.
absl::StatusOr<std::unique_ptr<Process>> spawnProcess(const Placement& where,
                                                      const std::vector<std::string>& argv,
                                                      const std::string& log_path);

}  // namespace ferry::harness
