// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Every binary the build makes (not the tests) answers --help and -h with exit 0 and a usage
// text on stdout naming its main flags or commands, and starts nothing.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "eventually.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;

struct Binary {
  const char* path;
  std::vector<std::string> mentions;  // what the usage text must name
};

struct Run {
  int code = -1;
  std::string out;
};

// Runs `path args...` with stdin from /dev/null, stdout to a file; bounded to 10 s (a binary that
// ignored the flag could start a benchmark or a server: it is killed and the run fails).
Run runWith(const std::string& path, const std::vector<std::string>& args) {
  char tmpl[] = "/tmp/ferry-help-test-XXXXXX";
  int fd = ::mkstemp(tmpl);
  REQUIRE(fd >= 0);
  ::close(fd);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, tmpl, O_WRONLY | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> argv_s = {path};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  Run r;
  int status = 0;
  if (!ferry::testing::eventually([&] { return ::waitpid(pid, &status, WNOHANG) != 0; },
                                  std::chrono::seconds(10), path + " to exit")) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL(path << " still running after 10 s");
  }
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::stringstream ss;
  ss << std::ifstream(tmpl).rdbuf();
  r.out = ss.str();
  fs::remove(tmpl);
  return r;
}

}  // namespace

TEST_CASE("every binary answers --help and -h with exit 0 and its usage", "[cli]") {
  const std::vector<Binary> binaries = {
      {FERRYCTL_PATH, {"ferryctl check", "--manifests", "--admin", "workloads", "policies"}},
      {FERRY_AGENT_PATH, {"ferry-agent", "--node=", "--controller=", "--enroll-socket="}},
      {FERRY_CONTROLLER_PATH, {"ferry-controller", "--manifests", "--listen"}},
      {FERRY_CNI_PATH, {"ferry-cni", "CNI_COMMAND", "CNI_NETNS", "K8S_POD_NAME", "prevResult"}},
      {FERRY_CLUSTER_PATH, {"ferry-cluster up", "--nodes", "exec", "down"}},
      {FERRY_LOADGEN_PATH, {"ferry-loadgen serve", "--target=", "--connections="}},
      {FERRY_BENCH_SUITE_PATH, {"ferry-bench-suite", "--out=", "--mode="}},
      {FERRY_BENCH_SPLICE_PATH, {"ferry-bench-splice", "rounds"}},
      {FERRY_CONTROLLER_BENCH_PATH, {"ferry-controller-bench", "--pods", "--policies"}},
      {HBONE_BENCH_PATH, {"hbone_bench", "MiB"}},
      {HTTP_BENCH_PATH, {"ferry_http_bench", "seconds"}},
      {POLICY_BENCH_PATH, {"policy_bench"}},
  };
  for (const Binary& b : binaries) {
    for (const char* flag : {"--help", "-h"}) {
      CAPTURE(b.path, flag);
      Run r = runWith(b.path, {flag});
      CHECK(r.code == 0);
      CHECK(r.out.find("usage") != std::string::npos);
      for (const std::string& m : b.mentions) {
        CAPTURE(m, r.out);
        CHECK(r.out.find(m) != std::string::npos);
      }
    }
  }
}

TEST_CASE("ferryctl help before or after a command prints the usage, exit 0", "[cli]") {
  const std::vector<std::vector<std::string>> cases = {
      {"help"}, {"check", "--help"}, {"policies", "-h"}, {"check", "a/b", "c/d", "--help"}};
  for (const auto& args : cases) {
    CAPTURE(args);
    Run r = runWith(FERRYCTL_PATH, args);
    CHECK(r.code == 0);
    CHECK(r.out.find("ferryctl check <source> <destination>") != std::string::npos);
  }
}

TEST_CASE("ferryctl <command> --help adds that command's flags, from the flags library", "[cli]") {
  Run check = runWith(FERRYCTL_PATH, {"check", "--help"});
  CHECK(check.code == 0);
  CHECK(check.out.find("\nferryctl check\nflags:\n") != std::string::npos);
  CHECK(check.out.find("\n  --header=... (may be repeated)\n") != std::string::npos);
  CHECK(check.out.find("\n  -o, --output=table\n") != std::string::npos);
  CHECK(check.out.find("\n  --agents=") == std::string::npos);  // stat's, not check's
  Run stat = runWith(FERRYCTL_PATH, {"stat", "-h"});
  CHECK(stat.code == 0);
  CHECK(stat.out.find("\nferryctl stat\nflags:\n") != std::string::npos);
  CHECK(stat.out.find("\n  -n, --namespace=\n") != std::string::npos);
  CHECK(stat.out.find("\n  --window=10s\n") != std::string::npos);
  CHECK(stat.out.find("\n  --manifests=") == std::string::npos);
}

TEST_CASE("the deployable binaries answer --version with their name and the project version",
          "[cli]") {
  for (const char* path :
       {FERRYCTL_PATH, FERRY_AGENT_PATH, FERRY_CONTROLLER_PATH, FERRY_CNI_PATH}) {
    CAPTURE(path);
    Run r = runWith(path, {"--version"});
    CHECK(r.code == 0);
    CHECK(r.out == fs::path(path).filename().string() + " " FERRY_VERSION "\n");
  }
}
