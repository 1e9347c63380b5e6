// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Copyright Ferry authors.
//
// sockops on the node's pod subtree and on the agent's cgroup. Three jobs:
//  - TCP_CONNECT_CB (app socket, source port now chosen): move the original destination that
//    connect4/6 filed under the socket cookie to ferry_conns under the connection's key, before
//    the SYN leaves, so the agent always finds it once it accepts.
//  - ACTIVE/PASSIVE_ESTABLISHED: put both ends of a local app <-> outbound-listener connection
//    into the ferry_splice sockhash; sk_msg then moves bytes between them directly. The kernel
//    removes a socket from the sockhash when it closes.
//  - STATE_CB -> CLOSE: drop the original-destination record when the agent's end closes, or
//    when the app's connect was refused (SYN_SENT -> CLOSE: the fail-closed path, counted).
#include "lib/conn.h"

// Off by default (BpfConfig.splice): a socket in a sockmap receives through the kernel's
// tcp_bpf_recvmsg, which waits once and returns EAGAIN from a *blocking* recv() when the wakeup
// brought no data (e.g. the FIN_WAIT2 state change after a half-close). Apps in the mesh must
// not see that, so the app's end must stay out of any sockmap (bpf/README.md, "Why it stays off").
const volatile __u32 ferry_splice_enabled = 0;

static __always_inline void ferry_watch_state(struct bpf_sock_ops* skops) {
  bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void ferry_file_orig_dst(struct bpf_sock_ops* skops, __u64 netns) {
  __u64 cookie = bpf_get_socket_cookie(skops);
  struct ferry_orig_dst* orig = bpf_map_lookup_elem(&ferry_orig_ck, &cookie);
  if (!orig) {
    return;
  }
  struct ferry_conn_key key;
  FERRY_CONN_KEY_FROM(key, skops, netns);
  if (bpf_map_update_elem(&ferry_conns, &key, orig, BPF_ANY) == 0) {
    ferry_count(FERRY_CTR_ORIG_DST_RECORDED);
  }
  bpf_map_delete_elem(&ferry_orig_ck, &cookie);
  ferry_watch_state(skops);
}

static __always_inline void ferry_splice_socket(struct bpf_sock_ops* skops, __u64 netns,
                                                const struct ferry_pod_config* pod, int active) {
  struct ferry_conn_key key;
  FERRY_CONN_KEY_FROM(key, skops, netns);
  // Only the local hop between the app and the agent's outbound listener: both ends in this
  // namespace (same address), and the listener's port on the right side.
  if (!ferry_addr_equal(key.local_addr, key.remote_addr)) {
    return;
  }
  __u16 listener_port = active ? key.remote_port : key.local_port;
  if (listener_port != pod->outbound_port) {
    return;
  }
  if (ferry_splice_enabled && bpf_sock_hash_update(skops, &ferry_splice, &key, BPF_ANY) == 0) {
    ferry_count(FERRY_CTR_SPLICED);
  }
  if (!active) {
    ferry_watch_state(skops);  // the agent's end: its close retires the record
  }
}

static __always_inline void ferry_on_close(struct bpf_sock_ops* skops, __u64 netns,
                                           const struct ferry_pod_config* pod) {
  struct ferry_conn_key key;
  FERRY_CONN_KEY_FROM(key, skops, netns);
  if (skops->args[0] == BPF_TCP_SYN_SENT) {
    ferry_count(FERRY_CTR_CONNECT_NO_LISTENER);
    bpf_map_delete_elem(&ferry_conns, &key);
    return;
  }
  if (key.local_port == pod->outbound_port) {
    struct ferry_conn_key app;
    ferry_conn_key_swap(&app, &key);
    bpf_map_delete_elem(&ferry_conns, &app);
  }
}

SEC("sockops")
int ferry_sockops(struct bpf_sock_ops* skops) {
  if (skops->family != FERRY_AF_INET && skops->family != FERRY_AF_INET6) {
    return 1;
  }
  __u64 netns = bpf_get_netns_cookie(skops);
  const struct ferry_pod_config* pod = bpf_map_lookup_elem(&ferry_pods, &netns);
  if (!pod) {
    return 1;
  }
  switch (skops->op) {
    case BPF_SOCK_OPS_TCP_CONNECT_CB:
      ferry_file_orig_dst(skops, netns);
      break;
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
      ferry_splice_socket(skops, netns, pod, 1);
      break;
    case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
      ferry_splice_socket(skops, netns, pod, 0);
      break;
    case BPF_SOCK_OPS_STATE_CB:
      if (skops->args[1] == BPF_TCP_CLOSE) {
        ferry_on_close(skops, netns, pod);
      }
      break;
    default:
      break;
  }
  return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
