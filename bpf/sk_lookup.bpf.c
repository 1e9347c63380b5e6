// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Copyright Ferry authors.
//
// sk_lookup, attached to each enrolled pod's network namespace: a plaintext TCP connection
// arriving for the pod's address is handed to the agent's inbound listener (15006) in that
// namespace. The accepted socket keeps the packet's addresses, so the agent reads the port the
// peer asked for with getsockname(); no original-destination record is needed inbound.
//
// Left alone: HBONE (15008, the agent's own listener), excluded inbound ports (kubelet
// probes), opted-out pods, and connections from inside the namespace itself: the agent
// delivering to the app, and captured outbound connections to the pod's own outbound listener.
// Those are recognized by their source address being the destination address (a socket
// connecting to a local address gets that address as its source) or by arriving on lo; the
// ingress ifindex alone is not enough, since local traffic can report the address's device.
// A pair the agent authorized for the same-node direct path (ferry_direct, keyed by the
// remote address as source) is let in to the app itself. An enrolled pod with no inbound listener
// is refused: plaintext never reaches the app around the agent.
#include "lib/common.h"

#define FERRY_LOOPBACK_IFINDEX 1  // lo is ifindex 1 in every network namespace

SEC("sk_lookup")
int ferry_sk_lookup(struct bpf_sk_lookup* ctx) {
  if (ctx->protocol != FERRY_IPPROTO_TCP || ctx->ingress_ifindex == FERRY_LOOPBACK_IFINDEX) {
    return SK_PASS;
  }
  __u16 port = (__u16)ctx->local_port;
  if (port == FERRY_PORT_HBONE) {
    return SK_PASS;
  }
  __u32 family = FERRY_CTX_READ(ctx, family);
  __u32 l4 = FERRY_CTX_READ(ctx, local_ip4), r4 = FERRY_CTX_READ(ctx, remote_ip4);
  __u32 l6_0 = FERRY_CTX_READ(ctx, local_ip6[0]), l6_1 = FERRY_CTX_READ(ctx, local_ip6[1]);
  __u32 l6_2 = FERRY_CTX_READ(ctx, local_ip6[2]), l6_3 = FERRY_CTX_READ(ctx, local_ip6[3]);
  __u32 r6_0 = FERRY_CTX_READ(ctx, remote_ip6[0]), r6_1 = FERRY_CTX_READ(ctx, remote_ip6[1]);
  __u32 r6_2 = FERRY_CTX_READ(ctx, remote_ip6[2]), r6_3 = FERRY_CTX_READ(ctx, remote_ip6[3]);
  struct ferry_addr_key addr;
  struct ferry_addr_key remote;
  int is_v6 = family == FERRY_AF_INET6;
  if (is_v6) {
    ferry_addr_v6(addr.addr, l6_0, l6_1, l6_2, l6_3);
    ferry_addr_v6(remote.addr, r6_0, r6_1, r6_2, r6_3);
  } else {
    ferry_addr_v4(addr.addr, l4);
    ferry_addr_v4(remote.addr, r4);
  }
  if (ferry_addr_equal(addr.addr, remote.addr)) {
    return SK_PASS;
  }
  const struct ferry_pod_addr_value* pod = bpf_map_lookup_elem(&ferry_pod_addrs, &addr);
  if (!pod || (pod->flags & FERRY_POD_F_OPT_OUT)) {
    return SK_PASS;
  }
  struct ferry_port_key pk = {.port = port, .direction = FERRY_DIR_INBOUND};
  if (bpf_map_lookup_elem(&ferry_ports, &pk)) {
    ferry_count(FERRY_CTR_INBOUND_EXCLUDED);
    return SK_PASS;
  }
  struct ferry_direct_key direct = {.dst_port = port};
  __builtin_memcpy(direct.src_addr, remote.addr, 16);
  __builtin_memcpy(direct.dst_addr, addr.addr, 16);
  if (bpf_map_lookup_elem(&ferry_direct, &direct)) {
    ferry_count(FERRY_CTR_INBOUND_DIRECT);
    return SK_PASS;
  }
  __u32 slot = FERRY_LISTENER_SLOT(pod->pod_index, is_v6);
  struct bpf_sock* listener = bpf_map_lookup_elem(&ferry_in_lsn, &slot);
  if (!listener) {
    ferry_count(FERRY_CTR_INBOUND_REFUSED);
    return SK_DROP;
  }
  long err = bpf_sk_assign(ctx, listener, 0);
  bpf_sk_release(listener);
  if (err) {
    ferry_count(FERRY_CTR_INBOUND_REFUSED);
    return SK_DROP;
  }
  ferry_count(FERRY_CTR_INBOUND_STEERED);
  return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
