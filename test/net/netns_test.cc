// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "net/netns.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness/cluster.h"
#include "net/socket_address.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::net {
namespace {

TEST_CASE("sockets made in a pod namespace live there and the thread comes back",
          "[netns][privileged]") {
  FERRY_REQUIRE_ROOT();
  auto cluster = harness::Cluster::create({.nodes = 1, .pods_per_node = 2});
  REQUIRE_OK(cluster);
  const harness::Pod& pod = (*cluster)->pod(1, 1);

  auto host_cookie = netnsCookie("/proc/self/ns/net");
  auto pod_cookie = netnsCookie(pod.netns_path);
  auto other_cookie = netnsCookie((*cluster)->pod(1, 2).netns_path);
  REQUIRE_OK(host_cookie);
  REQUIRE_OK(pod_cookie);
  REQUIRE_OK(other_cookie);
  CHECK(*host_cookie != *pod_cookie);
  CHECK(*pod_cookie != *other_cookie);

  // A socket created in the pod can bind the pod's address, which the host does not have.
  auto fd = socketInNetns(pod.netns_path, AF_INET, SOCK_STREAM);
  REQUIRE_OK(fd);
  absl::StatusOr<SocketAddress> addr = SocketAddress::parse(pod.ipv4, 0);
  REQUIRE_OK(addr);
  CHECK(::bind(*fd, addr->sa(), addr->len) == 0);
  ::close(*fd);
  // And this thread is back home.
  auto after = netnsCookie("/proc/self/ns/net");
  REQUIRE_OK(after);
  CHECK(*after == *host_cookie);

  auto missing = ScopedNetns::enter("/run/netns/ferry-does-not-exist");
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ferry::net
