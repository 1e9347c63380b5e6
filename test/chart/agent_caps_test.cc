// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
//
// Does the chart's capability set for ferry-agent work, and is each capability needed? A child
// process keeps uid 0 (as in the container) but only the capabilities of one table row, then
// does what the agent does with them: start the capture (load + attach + pin), enroll a pod
// (sk_lookup on its netns), open a listener inside the pod's namespace (setns), set SO_MARK on
// a socket, and detach everything. Each row states which of those must work.

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netinet/in.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "bpf/capture.h"
#include "capture_env.h"
#include "net/netns.h"
#include "privileged.h"

namespace {

using ferry::bpf::BpfConfig;
using ferry::bpf::Capture;
using ferry::bpf::PodSpec;

enum Step : int {
  kStart = 1,     // Capture::start: load, attach to the pod cgroup, pin
  kEnroll = 2,    // enrollPod: sk_lookup link on the pod's netns
  kListener = 4,  // a listening socket inside the pod's netns (setns)
  kMark = 8,      // SO_MARK on a socket
  kDetach = 16,   // Capture::detachAll
};
constexpr int kAll = kStart | kEnroll | kListener | kMark | kDetach;

// Leaves this (child) process with exactly `caps` (uid stays 0, as in a container).
bool keepOnly(const std::set<int>& caps) {
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (!caps.count(cap) && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      return false;
    }
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int cap : caps) {
    data[cap / 32].effective |= 1u << (cap % 32);
    data[cap / 32].permitted |= 1u << (cap % 32);
  }
  return ::syscall(SYS_capset, &header, data) == 0;
}

// Runs the agent's privileged steps; returns the bitmask of steps that worked.
int agentSteps(const BpfConfig& config, const std::string& netns_path, FILE* log) {
  int done = 0;
  absl::StatusOr<std::unique_ptr<Capture>> capture = Capture::start(config);
  if (!capture.ok()) {
    std::fprintf(log, "start: %s\n", capture.status().ToString().c_str());
  } else {
    done |= kStart;
    absl::StatusOr<ferry::bpf::PodHandle> pod =
        (*capture)->enrollPod(PodSpec{netns_path, "10.244.1.10", "", false});
    if (pod.ok()) {
      done |= kEnroll;
    } else {
      std::fprintf(log, "enroll: %s\n", pod.status().ToString().c_str());
    }
  }
  absl::StatusOr<int> fd = ferry::net::socketInNetns(netns_path, AF_INET, SOCK_STREAM);
  if (fd.ok()) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(FERRY_PORT_OUTBOUND);
    if (::bind(*fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::listen(*fd, 8) == 0) {
      done |= kListener;
    } else {
      std::fprintf(log, "listener: %s\n", std::strerror(errno));
    }
    ::close(*fd);
  } else {
    std::fprintf(log, "listener: %s\n", fd.status().ToString().c_str());
  }
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  uint32_t mark = 0x4645;
  if (::setsockopt(s, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == 0) {
    done |= kMark;
  } else {
    std::fprintf(log, "SO_MARK: %s\n", std::strerror(errno));
  }
  ::close(s);
  if (capture.ok()) {
    absl::Status detached = (*capture)->detachAll();
    if (detached.ok()) {
      done |= kDetach;
    } else {
      std::fprintf(log, "detach: %s\n", detached.ToString().c_str());
    }
  }
  return done;
}

struct Row {
  const char* name;
  std::set<int> caps;
  int expected;
};

}  // namespace

TEST_CASE("ferry-agent's capability set: each capability is needed and together they suffice",
          "[chart][privileged]") {
  FERRY_REQUIRE_ROOT();
  // The chart grants BPF + SYS_ADMIN, and NET_ADMIN for agent.socketMark (on by default: the
  // agent runs inside the pod cgroup subtree). Keep in step with
  // charts/ferry/templates/agent-daemonset.yaml; test/chart/lib/contract.mjs checks the render.
  const int agent_needs = kStart | kEnroll | kListener | kDetach;
  const std::vector<Row> rows = {
      {"the chart's set (BPF SYS_ADMIN NET_ADMIN) does all the agent does",
       {CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN},
       kAll},
      {"with agent.socketMark=0 (BPF SYS_ADMIN) all but SO_MARK",
       {CAP_BPF, CAP_SYS_ADMIN},
       agent_needs},
      {"without SYS_ADMIN: no setns (no enrollment, no in-pod listeners), and sockops cannot "
       "read the tcp_sock counters the direct path reports (bpf_skc_to_tcp_sock needs "
       "PERFMON): nothing loads",
       {CAP_BPF, CAP_NET_ADMIN},
       kMark},
      {"BPF PERFMON NET_ADMIN: the capture loads, but no setns",
       {CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN},
       kStart | kMark | kDetach},
      {"SYS_ADMIN alone: the kernel accepts it for bpf(), CAP_BPF adds no power",
       {CAP_SYS_ADMIN},
       agent_needs},
      {"CAP_BPF alone loads nothing that attaches to cgroups", {CAP_BPF}, 0},
      {"no capability: nothing", {}, 0},
  };
  for (const Row& row : rows) {
    SECTION(row.name) {
      ferry::bpf::testing::TestNetns netns("10.244.1.10/16", "fd00:244::1:10/64");
      ferry::bpf::testing::TestCgroup pods;
      ferry::bpf::testing::TestCgroup agent;
      BpfConfig config;
      config.pin_dir = "/sys/fs/bpf/" + ferry::bpf::testing::uniqueName("capstest");
      config.pod_cgroup = pods.path();
      config.agent_cgroup = agent.path();

      char log_path[] = "/tmp/ferry-capstest-XXXXXX";
      int log_fd = ::mkstemp(log_path);
      REQUIRE(log_fd >= 0);
      pid_t child = ::fork();
      REQUIRE(child >= 0);
      if (child == 0) {
        FILE* log = ::fdopen(log_fd, "w");
        if (!keepOnly(row.caps)) {
          std::fprintf(log, "cannot drop capabilities: %s\n", std::strerror(errno));
          std::fflush(log);
          ::_exit(100);
        }
        int done = agentSteps(config, netns.path(), log);
        std::fflush(log);
        ::_exit(done);
      }
      int status = 0;
      REQUIRE(::waitpid(child, &status, 0) == child);
      // Whatever the child left behind goes, with full privileges.
      (void)Capture::detachAll(config.pin_dir);
      std::error_code ec;
      std::filesystem::remove_all(config.pin_dir, ec);
      std::string log;
      if (FILE* f = ::fopen(log_path, "r")) {
        char buf[512];
        while (std::fgets(buf, sizeof(buf), f)) {
          log += buf;
        }
        std::fclose(f);
      }
      ::close(log_fd);
      ::unlink(log_path);
      INFO("child log:\n" << log);
      REQUIRE(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == row.expected);
    }
  }
}
