// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "capture_env.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "bpf/sys.h"
#include "net/netns.h"
#include "net/socket_address.h"
#include "poll_until.h"

namespace ferry::bpf::testing {
namespace {

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  if (!out) {
    throw std::runtime_error("writing " + path + " failed");
  }
}

}  // namespace

std::string uniqueName(const std::string& what) {
  static std::atomic<int> counter{0};
  return absl::StrCat("ferry-bpft-", ::getpid(), "-", counter++, "-", what);
}

int shell(const std::string& cmd) {
  return std::system(cmd.c_str());
}

TestNetns::TestNetns(const std::string& ipv4_cidr, const std::string& ipv6_cidr)
    : name_(uniqueName("ns")), path_("/run/netns/" + name_) {
  std::string ns = "ip -n " + name_;
  std::string cmd =
      absl::StrCat("ip netns add ", name_, " && ", ns, " link set lo up && ", ns,
                   " link add d0 type veth peer name d1 && ", ns, " link set d1 up && ", ns,
                   " addr add ", ipv4_cidr, " dev d0 && ", ns, " addr add ", ipv6_cidr,
                   " dev d0 nodad && ", ns, " link set d0 up");
  if (shell(cmd) != 0) {
    shell("ip netns del " + name_ + " 2>/dev/null");
    throw std::runtime_error("creating network namespace failed: " + cmd);
  }
}

TestNetns::~TestNetns() {
  shell("ip netns del " + name_);
}

TestCgroup::TestCgroup(const std::string& parent, bool kill_leftovers)
    : path_(parent + "/" + uniqueName("cg")), kill_leftovers_(kill_leftovers) {
  if (::mkdir(path_.c_str(), 0755) != 0) {
    throw std::runtime_error("mkdir " + path_ + ": " + std::strerror(errno));
  }
}

TestCgroup::~TestCgroup() {
  // A test that failed half-way may leave a child here: cgroup.kill ends it (and it is reaped
  // by waitChild's callers or at exit); a cgroup with no live processes can go.
  if (kill_leftovers_) {
    std::ofstream(path_ + "/cgroup.kill") << "1";
  }
  // Bounded (2 s): a killed child leaves the cgroup once it has exited. If it stays busy the
  // cgroup is left behind; nothing else to do in a destructor.
  static_cast<void>(ferry::testing::pollUntil(
      [&] { return ::rmdir(path_.c_str()) == 0 || errno != EBUSY; }, std::chrono::seconds(2)));
}

AgentCgroup::AgentCgroup(const std::string& join) {
  absl::StatusOr<std::string> self = selfCgroupPath();
  if (!self.ok()) {
    throw std::runtime_error(std::string(self.status().message()));
  }
  previous_ = *self;
  if (join.empty()) {
    own_ = std::make_unique<TestCgroup>("/sys/fs/cgroup/unified", false);
    path_ = own_->path();
  } else {
    path_ = join;
  }
  writeFile(path_ + "/cgroup.procs", std::to_string(::getpid()));
}

AgentCgroup::~AgentCgroup() {
  try {
    writeFile(previous_ + "/cgroup.procs", std::to_string(::getpid()));
  } catch (const std::exception&) {
    // The cgroup then stays; nothing else to do in a destructor.
  }
}

UniqueFd socketIn(const std::string& netns_path, int domain, int type) {
  absl::StatusOr<int> fd = net::socketInNetns(netns_path, domain, type);
  return UniqueFd(fd.ok() ? *fd : -1);
}

UniqueFd listenIn(const std::string& netns_path, const std::string& addr, uint16_t port) {
  absl::StatusOr<net::SocketAddress> sa = net::SocketAddress::parse(addr, port);
  if (!sa.ok()) {
    return UniqueFd();
  }
  UniqueFd fd = socketIn(netns_path, sa->family(), SOCK_STREAM);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (!fd.valid() || ::bind(fd.get(), sa->sa(), sa->len) != 0 || ::listen(fd.get(), 64) != 0) {
    return UniqueFd();
  }
  return fd;
}

pid_t spawnInPod(const std::string& cgroup, const std::string& netns_path,
                 const std::function<int()>& body) {
  int ns = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  std::string procs = cgroup + "/cgroup.procs";
  pid_t pid = ::fork();
  if (pid == 0) {
    int cg = ::open(procs.c_str(), O_WRONLY);
    if (cg < 0 || ::write(cg, "0", 1) != 1 || !net::enterNetns(ns)) {
      ::_exit(200);
    }
    ::close(cg);
    ::_exit(body());
  }
  ::close(ns);
  return pid;
}

int waitChild(pid_t pid, int timeout_ms) {
  int status = 0;
  if (ferry::testing::pollUntil([&] { return ::waitpid(pid, &status, WNOHANG) == pid; },
                                std::chrono::milliseconds(timeout_ms),
                                std::chrono::milliseconds(5))) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return -1;
}

UniqueFd acceptWithin(int listener, int timeout_ms) {
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) {
    return UniqueFd();
  }
  return UniqueFd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
}

int connectFromPod(const std::string& addr, uint16_t port, const std::string& payload) {
  absl::StatusOr<net::SocketAddress> sa = net::SocketAddress::parse(addr, port);
  if (!sa.ok()) {
    return EINVAL;
  }
  int fd = ::socket(sa->family(), SOCK_STREAM, 0);
  if (::connect(fd, sa->sa(), sa->len) != 0) {
    int err = errno;
    ::close(fd);
    return err;
  }
  if (!payload.empty()) {
    if (::send(fd, payload.data(), payload.size(), 0) != static_cast<ssize_t>(payload.size())) {
      return 101;
    }
    std::string back(payload.size(), '\0');
    size_t got = 0;
    while (got < back.size()) {
      ssize_t n = ::recv(fd, back.data() + got, back.size() - got, 0);
      if (n <= 0) {
        return 102;
      }
      got += n;
    }
    if (back != payload) {
      return 103;
    }
  }
  ::close(fd);
  return 0;
}

absl::Status CaptureEnv::start(BpfConfig config) {
  config.pin_dir = pin_dir;
  config.pod_cgroup = pods.path();
  config.agent_cgroup = agent.path();
  absl::StatusOr<std::unique_ptr<Capture>> started = Capture::start(config);
  if (!started.ok()) {
    Capture::detachAll(pin_dir).IgnoreError();
    ::rmdir(pin_dir.c_str());
    return started.status();
  }
  capture = std::move(*started);
  return absl::OkStatus();
}

absl::StatusOr<PodHandle> CaptureEnv::enroll(bool opt_out) {
  PodSpec spec;
  spec.netns_path = netns.path();
  spec.ipv4 = "10.244.1.11";
  spec.ipv6 = "fd00:244::1:11";
  spec.opt_out = opt_out;
  return capture->enrollPod(spec);
}

CaptureEnv::~CaptureEnv() {
  if (capture) {
    capture->detachAll().IgnoreError();
    capture.reset();
  }
  Capture::detachAll(pin_dir).IgnoreError();
  ::rmdir(pin_dir.c_str());
}

}  // namespace ferry::bpf::testing
