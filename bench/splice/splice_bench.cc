// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
//
// Request/response round trips between an app in a pod and the agent's in-pod listener, through
// the sockmap splice and through plain loopback TCP, measured side by side in one run and
// reported as a ratio. Both paths are the same hop (app -> agent inside the pod's namespace):
// the spliced one is a captured connect to a service VIP (rewritten to :15001, both ends in the
// splice sockhash); the plain one connects to an excluded port the agent also listens on.
//
//   sudo build/bench/splice/ferry-bench-splice [rounds] [message-bytes]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bpf/capture.h"
#include "capture_env.h"
#include "harness/cluster.h"
#include "net/netns.h"
#include "net/socket_address.h"

namespace {

using ferry::bpf::UniqueFd;
namespace fb = ferry::bpf;

constexpr uint16_t kPlainPort = 15002;
constexpr int kBlocks = 10;  // alternate the two paths in blocks so drift hits both alike

// Sockmap sockets can return EAGAIN from a blocking recv (see bpf/README.md): retry.
bool readFull(int fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd, buf + got, n - got, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
      continue;
    }
    if (r <= 0) {
      return false;
    }
    got += r;
  }
  return true;
}

bool writeFull(int fd, const char* buf, size_t n) {
  size_t put = 0;
  while (put < n) {
    ssize_t w = ::send(fd, buf + put, n - put, MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      continue;
    }
    if (w <= 0) {
      return false;
    }
    put += w;
  }
  return true;
}

// The agent: echo every message on every accepted connection.
void echoServer(int listener, size_t size, std::atomic<bool>* stop) {
  std::vector<std::thread> conns;
  while (!stop->load()) {
    UniqueFd conn = fb::testing::acceptWithin(listener, 200);
    if (!conn.valid()) {
      continue;
    }
    conns.emplace_back([fd = conn.release(), size] {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      std::vector<char> buf(size);
      while (readFull(fd, buf.data(), size) && writeFull(fd, buf.data(), size)) {
      }
      ::close(fd);
    });
  }
  for (std::thread& t : conns) {
    t.join();
  }
}

int connectTo(const char* addr, uint16_t port) {
  absl::StatusOr<ferry::net::SocketAddress> sa = ferry::net::SocketAddress::parse(addr, port);
  if (!sa.ok()) {
    return -1;
  }
  int fd = ::socket(sa->family(), SOCK_STREAM, 0);
  if (::connect(fd, sa->sa(), sa->len) != 0) {
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// Nanoseconds for `rounds` round trips on fd, or -1.
int64_t roundTrips(int fd, int rounds, size_t size) {
  std::vector<char> buf(size, 'x');
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < rounds; ++i) {
    if (!writeFull(fd, buf.data(), size) || !readFull(fd, buf.data(), size)) {
      return -1;
    }
  }
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              start)
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::printf(
        "usage: ferry-bench-splice [rounds >= %d] [message-bytes 1..1048576]\n"
        "Splice versus copy relay cost on a one-node local cluster (needs root).\n",
        kBlocks);
    return 0;
  }
  int rounds = argc > 1 ? std::atoi(argv[1]) : 20000;
  size_t size = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 64;
  if (rounds < kBlocks || size == 0 || size > (1u << 20)) {
    std::fprintf(stderr, "usage: %s [rounds >= %d] [message-bytes 1..1048576]\n", argv[0], kBlocks);
    return 2;
  }
  auto cluster = ferry::harness::Cluster::create({.nodes = 1, .pods_per_node = 1});
  if (!cluster.ok()) {
    std::fprintf(stderr, "cluster: %s\n", cluster.status().ToString().c_str());
    return 1;
  }
  const ferry::harness::Node& node = (*cluster)->node(1);
  const ferry::harness::Pod& pod = (*cluster)->pod(1, 1);
  int status = 1;
  {
    fb::testing::AgentCgroup agent(node.agent_cgroup_path);
    fb::BpfConfig config;
    config.pin_dir = node.bpffs_dir;
    config.pod_cgroup = node.cgroup_path;
    config.agent_cgroup = node.agent_cgroup_path;
    config.splice = true;
    auto capture = fb::Capture::start(config);
    if (!capture.ok()) {
      std::fprintf(stderr, "capture: %s\n", capture.status().ToString().c_str());
      return 1;
    }
    (*capture)->setMeshCidrs({"10.244.0.0/16"}, {"10.96.0.0/16"}).IgnoreError();
    (*capture)->setExcludedPorts(fb::PortDirection::kOutbound, {kPlainPort}).IgnoreError();
    (*capture)->enrollPod({pod.netns_path, pod.ipv4, "", false}).IgnoreError();
    UniqueFd spliced = fb::testing::listenIn(pod.netns_path, "0.0.0.0", FERRY_PORT_OUTBOUND);
    UniqueFd plain = fb::testing::listenIn(pod.netns_path, pod.ipv4, kPlainPort);
    std::atomic<bool> stop{false};
    std::thread s1(echoServer, spliced.get(), size, &stop);
    std::thread s2(echoServer, plain.get(), size, &stop);

    int results[2];
    if (::pipe(results) != 0) {
      return 1;
    }
    std::string pod_ip = pod.ipv4;
    pid_t app = fb::testing::spawnInPod(pod.cgroup_path, pod.netns_path, [&] {
      int via_splice = connectTo("10.96.0.10", 80);
      int via_loopback = connectTo(pod_ip.c_str(), kPlainPort);
      if (via_splice < 0 || via_loopback < 0) {
        return 3;
      }
      roundTrips(via_splice, 200, size);  // warm both paths up
      roundTrips(via_loopback, 200, size);
      int64_t total[2] = {0, 0};
      for (int block = 0; block < kBlocks; ++block) {
        int64_t a = roundTrips(via_splice, rounds / kBlocks, size);
        int64_t b = roundTrips(via_loopback, rounds / kBlocks, size);
        if (a < 0 || b < 0) {
          return 4;
        }
        total[0] += a;
        total[1] += b;
      }
      ::close(via_splice);
      ::close(via_loopback);
      return ::write(results[1], total, sizeof(total)) == sizeof(total) ? 0 : 5;
    });
    int exit = fb::testing::waitChild(app, 600000);
    int64_t total[2] = {0, 0};
    bool have = exit == 0 && ::read(results[0], total, sizeof(total)) == sizeof(total);
    stop = true;
    s1.join();
    s2.join();
    auto counters = (*capture)->counters();
    if (have && counters.ok()) {
      int measured = (rounds / kBlocks) * kBlocks;
      double splice_us = total[0] / 1000.0 / measured;
      double loop_us = total[1] / 1000.0 / measured;
      std::printf("rounds %d, message %zu bytes, one run, paths interleaved in %d blocks\n",
                  measured, size, kBlocks);
      std::printf("  splice (sockmap)   %8.2f us per round trip\n", splice_us);
      std::printf("  loopback TCP       %8.2f us per round trip\n", loop_us);
      std::printf("  ratio loopback/splice = %.2f (above 1: the splice is faster)\n",
                  loop_us / splice_us);
      std::printf("  counters: spliced sockets %lu, redirected messages %lu, misses %lu\n",
                  static_cast<unsigned long>((*counters)[FERRY_CTR_SPLICED]),
                  static_cast<unsigned long>((*counters)[FERRY_CTR_SPLICE_MSGS]),
                  static_cast<unsigned long>((*counters)[FERRY_CTR_SPLICE_MISS]));
      status = 0;
    } else {
      std::fprintf(stderr, "the app in the pod failed (exit %d)\n", exit);
    }
    (*capture)->detachAll().IgnoreError();
  }
  return status;
}
