// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Each capture program passes the kernel's verifier (one test per program), and sk_lookup — the
// only one of them whose program type supports BPF_PROG_TEST_RUN — runs over a table of
// lookups. cgroup/connect4+6 (CGROUP_SOCK_ADDR), sockops and sk_msg have no test_run in the
// kernel; they are exercised end to end in capture_test.cc and the cluster e2e test.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "bpf/abi.h"
#include "bpf/fd.h"
#include "ferry_connect.skel.h"
#include "ferry_sk_lookup.skel.h"
#include "ferry_sk_msg.skel.h"
#include "ferry_sockops.skel.h"
#include "net/ip.h"
#include "privileged.h"

namespace {

using ferry::bpf::UniqueFd;

template <typename Skel>
void loadOnly(Skel* (*open)(), int (*load)(Skel*), void (*destroy)(Skel*),
              const char* keep_program) {
  Skel* skel = open();
  REQUIRE(skel != nullptr);
  bpf_program* prog = nullptr;
  bool found = false;
  bpf_object__for_each_program(prog, skel->obj) {
    bool keep = std::string(bpf_program__name(prog)) == keep_program;
    found = found || keep;
    bpf_program__set_autoload(prog, keep);
  }
  REQUIRE(found);
  int err = load(skel);
  INFO("verifier rejected " << keep_program << " (log above): " << std::strerror(-err));
  CHECK(err == 0);
  destroy(skel);
}

TEST_CASE("connect4 passes the verifier", "[bpf][verifier][privileged]") {
  FERRY_REQUIRE_ROOT();
  loadOnly(&ferry_connect__open, &ferry_connect__load, &ferry_connect__destroy, "ferry_connect4");
}

TEST_CASE("connect6 passes the verifier", "[bpf][verifier][privileged]") {
  FERRY_REQUIRE_ROOT();
  loadOnly(&ferry_connect__open, &ferry_connect__load, &ferry_connect__destroy, "ferry_connect6");
}

TEST_CASE("sk_lookup passes the verifier", "[bpf][verifier][privileged]") {
  FERRY_REQUIRE_ROOT();
  loadOnly(&ferry_sk_lookup__open, &ferry_sk_lookup__load, &ferry_sk_lookup__destroy,
           "ferry_sk_lookup");
}

TEST_CASE("sockops passes the verifier", "[bpf][verifier][privileged]") {
  FERRY_REQUIRE_ROOT();
  loadOnly(&ferry_sockops__open, &ferry_sockops__load, &ferry_sockops__destroy, "ferry_sockops");
}

TEST_CASE("sk_msg passes the verifier", "[bpf][verifier][privileged]") {
  FERRY_REQUIRE_ROOT();
  loadOnly(&ferry_sk_msg__open, &ferry_sk_msg__load, &ferry_sk_msg__destroy, "ferry_sk_msg");
}

// ---- sk_lookup over BPF_PROG_TEST_RUN ------------------------------------------------------

struct SkLookupDeleter {
  void operator()(ferry_sk_lookup* s) const { ferry_sk_lookup__destroy(s); }
};

// The address in ferry_abi.h's 16-byte normal form (IPv4 as IPv4-mapped).
ferry_addr_key addrKey(const char* text) {
  std::optional<ferry::net::IpAddress> ip = ferry::net::IpAddress::parse(text);
  REQUIRE(ip.has_value());
  ferry_addr_key k{};
  std::memcpy(k.addr, ip->addr16().data(), sizeof(k.addr));
  return k;
}

// The raw bytes of an address (4 for IPv4, 16 for IPv6), as a BPF context holds them.
void addressBytes(const char* text, void* out) {
  std::optional<ferry::net::IpAddress> ip = ferry::net::IpAddress::parse(text);
  REQUIRE(ip.has_value());
  std::memcpy(out, ip->bytes.data(), ip->v4 ? 4 : 16);
}

UniqueFd listenerOn(int family) {
  UniqueFd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  sockaddr_storage sa{};
  socklen_t len = 0;
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&sa);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&sa);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    len = sizeof(*in6);
    int one = 1;
    setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  REQUIRE(bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), len) == 0);
  REQUIRE(listen(fd.get(), 4) == 0);
  return fd;
}

uint64_t cookieOf(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  REQUIRE(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) == 0);
  return cookie;
}

struct LookupRow {
  const char* description;
  int family;
  int protocol;
  const char* local_addr;
  uint16_t local_port;
  const char* remote_addr;
  int expect_verdict;   // SK_PASS / SK_DROP
  int expect_listener;  // 0: no socket selected, 4: the IPv4 listener, 6: the IPv6 listener
};

TEST_CASE("sk_lookup table over BPF_PROG_TEST_RUN", "[bpf][sk_lookup][privileged]") {
  FERRY_REQUIRE_ROOT();
  std::unique_ptr<ferry_sk_lookup, SkLookupDeleter> skel(ferry_sk_lookup__open_and_load());
  REQUIRE(skel != nullptr);
  int pod_addrs = bpf_map__fd(skel->maps.ferry_pod_addrs);
  int listeners = bpf_map__fd(skel->maps.ferry_in_lsn);
  int ports = bpf_map__fd(skel->maps.ferry_ports);

  // Pod 0: IPv4 and IPv6 listeners. Pod 1: opted out. Pod 2: enrolled, no listener yet.
  ferry_pod_addr_value pod0{0, 0}, pod1{1, FERRY_POD_F_OPT_OUT}, pod2{2, 0};
  ferry_addr_key k;
  k = addrKey("10.244.1.11");
  REQUIRE(bpf_map_update_elem(pod_addrs, &k, &pod0, BPF_ANY) == 0);
  k = addrKey("fd00:244::1:11");
  REQUIRE(bpf_map_update_elem(pod_addrs, &k, &pod0, BPF_ANY) == 0);
  k = addrKey("10.244.1.12");
  REQUIRE(bpf_map_update_elem(pod_addrs, &k, &pod1, BPF_ANY) == 0);
  k = addrKey("10.244.1.13");
  REQUIRE(bpf_map_update_elem(pod_addrs, &k, &pod2, BPF_ANY) == 0);
  UniqueFd l4 = listenerOn(AF_INET);
  UniqueFd l6 = listenerOn(AF_INET6);
  uint32_t slot4 = FERRY_LISTENER_SLOT(0, 0), slot6 = FERRY_LISTENER_SLOT(0, 1);
  uint64_t fd4 = l4.get(), fd6 = l6.get();
  REQUIRE(bpf_map_update_elem(listeners, &slot4, &fd4, BPF_ANY) == 0);
  REQUIRE(bpf_map_update_elem(listeners, &slot6, &fd6, BPF_ANY) == 0);
  ferry_port_key probe{9090, FERRY_DIR_INBOUND, 0};
  ferry_port_key outbound_only{7070, FERRY_DIR_OUTBOUND, 0};
  ferry_port_value none{};
  REQUIRE(bpf_map_update_elem(ports, &probe, &none, BPF_ANY) == 0);
  REQUIRE(bpf_map_update_elem(ports, &outbound_only, &none, BPF_ANY) == 0);

  const LookupRow rows[] = {
      {"pod port -> the agent's IPv4 inbound listener", AF_INET, IPPROTO_TCP, "10.244.1.11", 8080,
       nullptr, SK_PASS, 4},
      {"pod port over IPv6 -> the IPv6 listener", AF_INET6, IPPROTO_TCP, "fd00:244::1:11", 8080,
       nullptr, SK_PASS, 6},
      {"an outbound-only exclusion does not exempt inbound", AF_INET, IPPROTO_TCP, "10.244.1.11",
       7070, nullptr, SK_PASS, 4},
      {"15006 itself is steered to the same listener", AF_INET, IPPROTO_TCP, "10.244.1.11", 15006,
       nullptr, SK_PASS, 4},
      {"15001 from outside is steered, never reaches the outbound listener", AF_INET, IPPROTO_TCP,
       "10.244.1.11", 15001, nullptr, SK_PASS, 4},
      {"HBONE 15008 reaches the agent directly", AF_INET, IPPROTO_TCP, "10.244.1.11", 15008,
       nullptr, SK_PASS, 0},
      {"excluded inbound port (probe) is left alone", AF_INET, IPPROTO_TCP, "10.244.1.11", 9090,
       nullptr, SK_PASS, 0},
      {"UDP is left alone", AF_INET, IPPROTO_UDP, "10.244.1.11", 53, nullptr, SK_PASS, 0},
      {"an address of no enrolled pod is left alone", AF_INET, IPPROTO_TCP, "10.244.9.9", 8080,
       nullptr, SK_PASS, 0},
      {"an opted-out pod is left alone", AF_INET, IPPROTO_TCP, "10.244.1.12", 8080, nullptr,
       SK_PASS, 0},
      {"a connection from the pod's own address (inside the namespace) is left alone", AF_INET,
       IPPROTO_TCP, "10.244.1.11", 8080, "10.244.1.11", SK_PASS, 0},
      {"an enrolled pod without an inbound listener is refused", AF_INET, IPPROTO_TCP,
       "10.244.1.13", 8080, nullptr, SK_DROP, 0},
  };
  for (const LookupRow& row : rows) {
    INFO(row.description);
    bpf_sk_lookup ctx{};
    ctx.family = row.family;
    ctx.protocol = row.protocol;
    ctx.local_port = row.local_port;
    ctx.remote_port = htons(40000);
    if (row.family == AF_INET) {
      addressBytes(row.local_addr, &ctx.local_ip4);
      addressBytes(row.remote_addr ? row.remote_addr : "10.244.2.11", &ctx.remote_ip4);
    } else {
      addressBytes(row.local_addr, ctx.local_ip6);
      addressBytes("fd00:244::2:11", ctx.remote_ip6);
    }
    LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &ctx, .ctx_out = &ctx,
                .ctx_size_in = sizeof(ctx), .ctx_size_out = sizeof(ctx));
    REQUIRE(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.ferry_sk_lookup), &opts) == 0);
    CHECK(static_cast<int>(opts.retval) == row.expect_verdict);
    uint64_t want = row.expect_listener == 4   ? cookieOf(l4.get())
                    : row.expect_listener == 6 ? cookieOf(l6.get())
                                               : 0;
    CHECK(ctx.cookie == want);
  }
}

}  // namespace
