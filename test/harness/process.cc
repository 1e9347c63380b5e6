// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "harness/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "net/netns.h"
#include "poll_until.h"

namespace ferry::harness {
namespace {

int decodeWaitStatus(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

// Only async-signal-safe calls between fork() and exec(): the parent may have threads.
[[noreturn]] void execInPlacement(const char* netns, const char* cgroup_procs, char* const* argv,
                                  int in_fd, int out_fd, int err_fd) {
  if (cgroup_procs != nullptr) {
    int fd = ::open(cgroup_procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) {
      _exit(125);
    }
    ::close(fd);
  }
  if (netns != nullptr) {
    int fd = ::open(netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || !net::enterNetns(fd)) {
      _exit(125);
    }
    ::close(fd);
  }
  if (in_fd >= 0) {
    ::dup2(in_fd, 0);
  }
  ::dup2(out_fd, 1);
  ::dup2(err_fd, 2);
  ::setpgid(0, 0);
  ::execvp(argv[0], argv);
  _exit(127);
}

struct ExecArgs {
  std::vector<std::string> storage;
  std::vector<char*> argv;
  std::string cgroup_procs;
  explicit ExecArgs(const std::vector<std::string>& args, const Placement& where) : storage(args) {
    for (auto& s : storage) {
      argv.push_back(s.data());
    }
    argv.push_back(nullptr);
    if (!where.cgroup_path.empty()) {
      cgroup_procs = where.cgroup_path + "/cgroup.procs";
    }
  }
  const char* netns(const Placement& where) const {
    return where.netns_path.empty() ? nullptr : where.netns_path.c_str();
  }
  const char* procs() const { return cgroup_procs.empty() ? nullptr : cgroup_procs.c_str(); }
};

absl::Status checkArgv(const std::vector<std::string>& argv) {
  if (argv.empty()) {
    return absl::InvalidArgumentError("empty command");
  }
  return absl::OkStatus();
}

}  // namespace

Process::~Process() {
  if (!reaped_) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

std::string Process::log() const {
  std::ifstream in(log_path_);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

bool Process::running() {
  if (reaped_) {
    return false;
  }
  int status = 0;
  pid_t rc = ::waitpid(pid_, &status, WNOHANG);
  if (rc == pid_) {
    reaped_ = true;
    exit_code_ = decodeWaitStatus(status);
    return false;
  }
  return true;
}

void Process::signal(int sig) {
  if (!reaped_) {
    ::kill(pid_, sig);
  }
}

absl::StatusOr<int> Process::wait(absl::Duration timeout) {
  // Polled every 5 ms at most: callers time restarts and hand-overs with this.
  if (!ferry::testing::pollUntil([&] { return !running(); }, absl::ToChronoMilliseconds(timeout),
                                 std::chrono::milliseconds(5))) {
    return absl::DeadlineExceededError(
        absl::StrCat("process ", pid_, " still running after ", absl::FormatDuration(timeout)));
  }
  return exit_code_;
}

absl::StatusOr<ProcessResult> runProcess(const Placement& where,
                                         const std::vector<std::string>& argv,
                                         absl::Duration timeout, const std::string& input) {
  if (absl::Status s = checkArgv(argv); !s.ok()) {
    return s;
  }
  ExecArgs args(argv, where);
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    return absl::ErrnoToStatus(errno, "pipe2");
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    return absl::ErrnoToStatus(errno, "fork");
  }
  if (pid == 0) {
    execInPlacement(args.netns(where), args.procs(), args.argv.data(), in_pipe[0], out_pipe[1],
                    err_pipe[1]);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  // Feed stdin from a non-blocking write loop interleaved with reading, so a child that
  // writes a lot before reading its input cannot deadlock us.
  ::fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  size_t written = 0;
  if (input.empty()) {
    ::close(in_pipe[1]);
    in_pipe[1] = -1;
  }
  ProcessResult result;
  absl::Time deadline = absl::Now() + timeout;
  bool out_open = true, err_open = true;
  char buf[65536];
  while (out_open || err_open) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return absl::DeadlineExceededError(absl::StrCat("`", absl::StrJoin(argv, " "),
                                                      "` did not finish within ",
                                                      absl::FormatDuration(timeout)));
    }
    pollfd fds[3] = {{out_open ? out_pipe[0] : -1, POLLIN, 0},
                     {err_open ? err_pipe[0] : -1, POLLIN, 0},
                     {in_pipe[1], POLLOUT, 0}};
    int ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1000));
    if (::poll(fds, 3, ms) < 0 && errno != EINTR) {
      return absl::ErrnoToStatus(errno, "poll");
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
        if (n > 0) {
          (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
        } else {
          (i == 0 ? out_open : err_open) = false;
        }
      }
    }
    if (in_pipe[1] >= 0 && (fds[2].revents & (POLLOUT | POLLERR))) {
      ssize_t n = ::write(in_pipe[1], input.data() + written, input.size() - written);
      if (n > 0) {
        written += static_cast<size_t>(n);
      }
      if (n < 0 || written == input.size()) {
        ::close(in_pipe[1]);
        in_pipe[1] = -1;
      }
    }
  }
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  if (in_pipe[1] >= 0) {
    ::close(in_pipe[1]);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = decodeWaitStatus(status);
  if (result.exit_code == 125) {
    return absl::FailedPreconditionError(
        absl::StrCat("could not place `", argv[0], "` in netns '", where.netns_path, "' / cgroup '",
                     where.cgroup_path, "' (does it still exist?)"));
  }
  if (result.exit_code == 127) {
    return absl::NotFoundError(absl::StrCat("could not execute `", argv[0], "`"));
  }
  return result;
}

absl::StatusOr<std::unique_ptr<Process>> spawnProcess(const Placement& where,
                                                      const std::vector<std::string>& argv,
                                                      const std::string& log_path) {
  if (absl::Status s = checkArgv(argv); !s.ok()) {
    return s;
  }
  ExecArgs args(argv, where);
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("open ", log_path));
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = ::fork();
  if (pid < 0) {
    return absl::ErrnoToStatus(errno, "fork");
  }
  if (pid == 0) {
    execInPlacement(args.netns(where), args.procs(), args.argv.data(), null_fd, log_fd, log_fd);
  }
  ::close(log_fd);
  ::close(null_fd);
  return std::make_unique<Process>(pid, log_path);
}

}  // namespace ferry::harness
