// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
//
// A one-pod stand-in for the local cluster, for the loader's own tests: a network namespace
// with a dummy interface holding the pod's addresses, a cgroup for the pod's processes, and
// a cgroup for this test process (the "agent"). Everything is removed on destruction, and the
// capture started through it is detached.
#pragma once

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>

#include "bpf/capture.h"
#include "bpf/fd.h"

namespace ferry::bpf::testing {

// A name unique to this process and call, for netns, cgroups and pin folders.
std::string uniqueName(const std::string& what);

// Runs `cmd` with /bin/sh; returns its exit status.
int shell(const std::string& cmd);

// A network namespace at /run/netns/<name> with lo up and a veth pair (both ends inside, so
// nothing leaves) whose d0 end carries the given addresses; no routes beyond their prefixes.
class TestNetns {
 public:
  TestNetns(const std::string& ipv4_cidr, const std::string& ipv6_cidr);
  ~TestNetns();
  const std::string& path() const { return path_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::string path_;
};

// A cgroup v2 directory under /sys/fs/cgroup/unified, removed on destruction.
class TestCgroup {
 public:
  // kill_leftovers: on destruction, kill whatever still runs inside (never for the cgroup
  // this test process itself lives in).
  explicit TestCgroup(const std::string& parent = "/sys/fs/cgroup/unified",
                      bool kill_leftovers = true);
  ~TestCgroup();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool kill_leftovers_;
};

// Moves this whole process (it plays the agent) into a cgroup of its own, or into `join` when
// given (a harness node's agent cgroup), and back on destruction.
class AgentCgroup {
 public:
  explicit AgentCgroup(const std::string& join = "");
  ~AgentCgroup();
  const std::string& path() const { return path_; }

 private:
  std::string previous_;
  std::unique_ptr<TestCgroup> own_;
  std::string path_;
};

// A socket created inside the network namespace at `netns_path`.
UniqueFd socketIn(const std::string& netns_path, int domain, int type);
// A TCP listener bound to addr:port inside the namespace.
UniqueFd listenIn(const std::string& netns_path, const std::string& addr, uint16_t port);

// Forks a child that joins `cgroup` (cgroup.procs) and the namespace, runs `body`, and exits
// with its return value. Returns the child's pid.
pid_t spawnInPod(const std::string& cgroup, const std::string& netns_path,
                 const std::function<int()>& body);
// Waits at most `timeout_ms` for the child; kills it past that. Exit status, or -1 if killed.
int waitChild(pid_t pid, int timeout_ms);
// accept() with a poll timeout; invalid fd on timeout.
UniqueFd acceptWithin(int listener, int timeout_ms);

// One connect() from inside a pod: returns 0 on success, else errno. `payload` is sent and the
// same number of bytes are expected back when non-empty.
int connectFromPod(const std::string& addr, uint16_t port, const std::string& payload = "");

// A started capture for one test pod; detaches everything it attached on destruction.
struct CaptureEnv {
  AgentCgroup agent;
  TestCgroup pods;
  TestCgroup pod{pods.path()};
  TestNetns netns{"10.244.1.11/16", "fd00:244::1:11/64"};
  std::string pin_dir = "/sys/fs/bpf/" + uniqueName("pins");
  std::unique_ptr<Capture> capture;

  ~CaptureEnv();
  // Starts the capture with `config`, its paths pointed at this environment.
  absl::Status start(BpfConfig config = {});
  absl::StatusOr<PodHandle> enroll(bool opt_out = false);
};

}  // namespace ferry::bpf::testing
