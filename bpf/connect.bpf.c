// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Copyright Ferry authors.
//
// Outbound capture: cgroup/connect4 and cgroup/connect6 on the node's pod cgroup subtree.
// A TCP connect from an enrolled pod (by netns cookie) to a mesh CIDR, on a port that is not
// excluded, from a pod that has not opted out, is rewritten to the pod's in-pod outbound
// listener; the original destination is filed under the socket cookie for sockops to move
// under the connection's 4-tuple once the source port exists.
//
// Same-node direct path: a connect to a pair the agent put in ferry_direct (both pods on this
// node, L4 only, allowed by policy) is not rewritten; it is filed under the socket cookie so
// sockops can report it and the agent can cut it if the policy changes.
//
// Fail closed: the rewrite does not depend on the agent being up. With no listener on the
// rewritten address the kernel answers the SYN with a RST (ECONNREFUSED); a pod with no
// outbound address for the family is refused here (EPERM). Neither ever reaches the original
// destination.
#include "lib/common.h"

// Sockets carrying this SO_MARK belong to the agent and are never captured. The agent's
// process is outside the pod subtree anyway (its sockets run no program of ours); the mark is
// the second lock for an agent that, say, runs a helper inside a pod cgroup. 0 disables it.
const volatile __u32 ferry_agent_mark = 0;

// cgroup/connect return codes: 0 fails the connect with EPERM.
#define FERRY_REFUSE 0
#define FERRY_ALLOW 1

static __always_inline int ferry_is_agent_socket(struct bpf_sock_addr* ctx) {
  struct bpf_sock* sk = ctx->sk;
  return ferry_agent_mark != 0 && sk && sk->mark == ferry_agent_mark;
}

// The prologue both families share: the enrolled pod making this connect when it is a TCP
// connect to a mesh destination that nothing exempts, otherwise NULL (the connect goes out
// untouched).
static __always_inline const struct ferry_pod_config* ferry_capturing_pod(struct bpf_sock_addr* ctx,
                                                                          const __u8 dst[16],
                                                                          __u16 port) {
  if (ctx->protocol != FERRY_IPPROTO_TCP) {
    return NULL;
  }
  if (ferry_is_agent_socket(ctx)) {
    ferry_count(FERRY_CTR_CONNECT_AGENT_SOCKET);
    return NULL;
  }
  __u64 netns = bpf_get_netns_cookie(ctx);
  const struct ferry_pod_config* pod = bpf_map_lookup_elem(&ferry_pods, &netns);
  if (!pod) {
    return NULL;
  }
  if (pod->flags & FERRY_POD_F_OPT_OUT) {
    ferry_count(FERRY_CTR_CONNECT_OPTED_OUT);
    return NULL;
  }
  struct ferry_lpm_key lpm = {.prefixlen = 128};
  __builtin_memcpy(lpm.addr, dst, 16);
  if (!bpf_map_lookup_elem(&ferry_cidrs, &lpm)) {
    ferry_count(FERRY_CTR_CONNECT_NOT_MESH);
    return NULL;
  }
  struct ferry_port_key pk = {.port = port, .direction = FERRY_DIR_OUTBOUND};
  if (bpf_map_lookup_elem(&ferry_ports, &pk)) {
    ferry_count(FERRY_CTR_CONNECT_EXCLUDED_PORT);
    return NULL;
  }
  return pod;
}

static __always_inline int ferry_record(struct bpf_sock_addr* ctx,
                                        const struct ferry_pod_config* pod, const __u8 dst[16],
                                        __u16 port, __u16 family) {
  struct ferry_orig_dst orig = {.port = port, .family = family, .pod_index = pod->pod_index};
  __builtin_memcpy(orig.addr, dst, 16);
  __u64 cookie = bpf_get_socket_cookie(ctx);
  // Without a record the agent cannot route the connection; refuse rather than guess.
  return bpf_map_update_elem(&ferry_orig_ck, &cookie, &orig, BPF_ANY) == 0;
}

// True when (source pod, destination) is a direct pair: the connect goes ahead untouched. A
// connection that cannot be filed is not let through directly (the agent's path takes it).
static __always_inline int ferry_direct_pair(struct bpf_sock_addr* ctx, const __u8 src[16],
                                             const __u8 dst[16], __u16 port, __u16 family) {
  struct ferry_direct_conn conn = {.key = {.dst_port = port}, .family = family};
  __builtin_memcpy(conn.key.src_addr, src, 16);
  __builtin_memcpy(conn.key.dst_addr, dst, 16);
  if (!bpf_map_lookup_elem(&ferry_direct, &conn.key)) {
    return 0;
  }
  __u64 cookie = bpf_get_socket_cookie(ctx);
  if (bpf_map_update_elem(&ferry_direct_ck, &cookie, &conn, BPF_ANY) != 0) {
    return 0;
  }
  ferry_count(FERRY_CTR_CONNECT_DIRECT);
  return 1;
}

SEC("cgroup/connect4")
int ferry_connect4(struct bpf_sock_addr* ctx) {
  __u8 dst[16];
  ferry_addr_v4(dst, ctx->user_ip4);
  __u16 port = bpf_ntohs((__u16)ctx->user_port);
  const struct ferry_pod_config* pod = ferry_capturing_pod(ctx, dst, port);
  if (!pod) {
    return FERRY_ALLOW;
  }
  __u32 listener;
  __builtin_memcpy(&listener, pod->outbound_addr4, 4);
  __u8 src[16];
  ferry_addr_v4(src, listener);  // the listener is on the pod's own address
  if (listener != 0 && ferry_direct_pair(ctx, src, dst, port, FERRY_AF_INET)) {
    return FERRY_ALLOW;
  }
  if (listener == 0 || pod->outbound_port == 0 ||
      !ferry_record(ctx, pod, dst, port, FERRY_AF_INET)) {
    ferry_count(FERRY_CTR_CONNECT_REFUSED);
    return FERRY_REFUSE;
  }
  ctx->user_ip4 = listener;
  ctx->user_port = bpf_htons(pod->outbound_port);
  ferry_count(FERRY_CTR_CONNECT_CAPTURED);
  return FERRY_ALLOW;
}

SEC("cgroup/connect6")
int ferry_connect6(struct bpf_sock_addr* ctx) {
  __u8 dst[16];
  ferry_addr_v6(dst, ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]);
  __u16 port = bpf_ntohs((__u16)ctx->user_port);
  const struct ferry_pod_config* pod = ferry_capturing_pod(ctx, dst, port);
  if (!pod) {
    return FERRY_ALLOW;
  }
  // A dual-stack socket connecting to an IPv4-mapped address stays IPv4 on the wire: it must
  // go to the IPv4-mapped form of the IPv4 listener.
  const __u32* d = (const __u32*)dst;
  int mapped = d[0] == 0 && d[1] == 0 && d[2] == bpf_htonl(0x0000ffff);
  __u32 w[4];
  if (mapped) {
    __u32 listener;
    __builtin_memcpy(&listener, pod->outbound_addr4, 4);
    w[0] = 0;
    w[1] = 0;
    w[2] = bpf_htonl(0x0000ffff);
    w[3] = listener;
    if (listener == 0) {
      w[2] = 0;  // marks "no address" for the check below
    }
  } else {
    __builtin_memcpy(w, pod->outbound_addr6, 16);
  }
  int missing = (w[0] | w[1] | w[2] | w[3]) == 0;
  if (!missing && ferry_direct_pair(ctx, (const __u8*)w, dst, port, FERRY_AF_INET6)) {
    return FERRY_ALLOW;
  }
  if (missing || pod->outbound_port == 0 ||
      !ferry_record(ctx, pod, dst, port, mapped ? FERRY_AF_INET : FERRY_AF_INET6)) {
    ferry_count(FERRY_CTR_CONNECT_REFUSED);
    return FERRY_REFUSE;
  }
  ctx->user_ip6[0] = w[0];
  ctx->user_ip6[1] = w[1];
  ctx->user_ip6[2] = w[2];
  ctx->user_ip6[3] = w[3];
  ctx->user_port = bpf_htons(pod->outbound_port);
  ferry_count(FERRY_CTR_CONNECT_CAPTURED);
  return FERRY_ALLOW;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
