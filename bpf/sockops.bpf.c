// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Copyright Ferry authors.
//
// sockops on the node's pod subtree and on the agent's cgroup. Four jobs:
//  - TCP_CONNECT_CB (app socket, source port now chosen): move the original destination that
//    connect4/6 filed under the socket cookie to ferry_conns under the connection's key, before
//    the SYN leaves, so the agent always finds it once it accepts.
//  - ACTIVE/PASSIVE_ESTABLISHED: put both ends of a local app <-> outbound-listener connection
//    into the ferry_splice sockhash; sk_msg then moves bytes between them directly. The kernel
//    removes a socket from the sockhash when it closes.
//  - direct connections (same node, ferry_direct_ck): complete the record at TCP_CONNECT_CB,
//    report the open at ACTIVE_ESTABLISHED and, at close, the payload both ways from the
//    socket's own counters (ferry_events), for the agent's Istio TCP telemetry.
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

static __always_inline void ferry_direct_connect(struct bpf_sock_ops* skops, __u64 netns) {
  __u64 cookie = bpf_get_socket_cookie(skops);
  struct ferry_direct_conn* conn = bpf_map_lookup_elem(&ferry_direct_ck, &cookie);
  if (!conn) {
    return;
  }
  conn->src_port = (__u16)FERRY_CTX_READ(skops, local_port);
  conn->netns_cookie = netns;
  ferry_watch_state(skops);
}

// Reserves an event for the direct connection behind this socket, NULL if it is not one (or
// the ring is full: counted, the agent reports what it can without it).
static __always_inline struct ferry_direct_event* ferry_direct_event(struct bpf_sock_ops* skops,
                                                                     __u32 type, __u64* cookie) {
  *cookie = bpf_get_socket_cookie(skops);
  struct ferry_direct_conn* conn = bpf_map_lookup_elem(&ferry_direct_ck, cookie);
  if (!conn) {
    *cookie = 0;  // not one: the caller has nothing to drop
    return NULL;
  }
  struct ferry_direct_event* e = bpf_ringbuf_reserve(&ferry_events, sizeof(*e), 0);
  if (!e) {
    ferry_count(FERRY_CTR_DIRECT_EVENT_LOST);
    return NULL;
  }
  __builtin_memset(e, 0, sizeof(*e));
  e->type = type;
  e->cookie = *cookie;
  e->conn = *conn;
  return e;
}

// What the connection carried, from the kernel's own counters: bytes_sent counts payload as
// transmitted (retransmissions too, never SYN or FIN); bytes_received counts sequence space, so
// it includes the peer's FIN once tcp_fin() has seen it (SOCK_DONE).
static __always_inline void ferry_direct_closed(struct bpf_sock_ops* skops) {
  __u64 cookie;
  struct ferry_direct_event* e = ferry_direct_event(skops, FERRY_EVENT_DIRECT_CLOSE, &cookie);
  if (!e) {
    // Not a direct connection (every watched socket closes through here): nothing to drop;
    // or the ring was full: the record still goes.
    if (cookie != 0) {
      bpf_map_delete_elem(&ferry_direct_ck, &cookie);
    }
    return;
  }
  e->old_state = (__u32)skops->args[0];
  struct bpf_sock* sk = skops->sk;
  struct tcp_sock* tp = sk ? bpf_skc_to_tcp_sock(sk) : NULL;
  if (tp) {
    e->bytes_sent = tp->bytes_sent - tp->bytes_retrans;
    __u64 received = tp->bytes_received;
    if ((tp->inet_conn.icsk_inet.sk.__sk_common.skc_flags & (1UL << SOCK_DONE)) && received > 0) {
      received -= 1;
    }
    e->bytes_received = received;
    e->error = (__u32)tp->inet_conn.icsk_inet.sk.sk_err;
  }
  bpf_ringbuf_submit(e, 0);
  bpf_map_delete_elem(&ferry_direct_ck, &cookie);
}

static __always_inline void ferry_direct_opened(struct bpf_sock_ops* skops) {
  __u64 cookie;
  struct ferry_direct_event* e = ferry_direct_event(skops, FERRY_EVENT_DIRECT_OPEN, &cookie);
  if (e) {
    bpf_ringbuf_submit(e, 0);
  }
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
      ferry_direct_connect(skops, netns);
      break;
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
      ferry_direct_opened(skops);
      ferry_splice_socket(skops, netns, pod, 1);
      break;
    case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
      ferry_splice_socket(skops, netns, pod, 0);
      break;
    case BPF_SOCK_OPS_STATE_CB:
      if (skops->args[1] == BPF_TCP_CLOSE) {
        ferry_direct_closed(skops);
        ferry_on_close(skops, netns, pod);
      }
      break;
    default:
      break;
  }
  return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
