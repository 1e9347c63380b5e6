// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Copyright Ferry authors.
//
// Builds a ferry_conn_key from the contexts that describe a TCP socket (sock_ops, sk_msg).
// Both contexts have the same field names and byte orders: addresses in network order,
// local_port in host order, remote_port in network order in the upper half of a __u32, which
// bpf_ntohl turns into the host-order port.
#ifndef FERRY_BPF_LIB_CONN_H_
#define FERRY_BPF_LIB_CONN_H_

#include "lib/common.h"

// Every context field is read once, unconditionally (FERRY_CTX_READ, lib/common.h).
#define FERRY_CONN_KEY_FROM(key, ctx, netns)                                                  \
  do {                                                                                        \
    __u32 family_ = FERRY_CTX_READ(ctx, family);                                              \
    __u32 l4_ = FERRY_CTX_READ(ctx, local_ip4), r4_ = FERRY_CTX_READ(ctx, remote_ip4);        \
    __u32 l6_0 = FERRY_CTX_READ(ctx, local_ip6[0]), l6_1 = FERRY_CTX_READ(ctx, local_ip6[1]); \
    __u32 l6_2 = FERRY_CTX_READ(ctx, local_ip6[2]), l6_3 = FERRY_CTX_READ(ctx, local_ip6[3]); \
    __u32 r6_0 = FERRY_CTX_READ(ctx, remote_ip6[0]);                                          \
    __u32 r6_1 = FERRY_CTX_READ(ctx, remote_ip6[1]);                                          \
    __u32 r6_2 = FERRY_CTX_READ(ctx, remote_ip6[2]);                                          \
    __u32 r6_3 = FERRY_CTX_READ(ctx, remote_ip6[3]);                                          \
    __u32 lport_ = FERRY_CTX_READ(ctx, local_port);                                           \
    __u32 rport_ = FERRY_CTX_READ(ctx, remote_port);                                          \
    __builtin_memset(&(key), 0, sizeof(key));                                                 \
    (key).netns_cookie = (netns);                                                             \
    if (family_ == FERRY_AF_INET) {                                                           \
      ferry_addr_v4((key).local_addr, l4_);                                                   \
      ferry_addr_v4((key).remote_addr, r4_);                                                  \
    } else {                                                                                  \
      ferry_addr_v6((key).local_addr, l6_0, l6_1, l6_2, l6_3);                                \
      ferry_addr_v6((key).remote_addr, r6_0, r6_1, r6_2, r6_3);                               \
    }                                                                                         \
    (key).local_port = (__u16)lport_;                                                         \
    (key).remote_port = (__u16)bpf_ntohl(rport_);                                             \
  } while (0)

// The same connection as seen from the other end.
static __always_inline void ferry_conn_key_swap(struct ferry_conn_key* out,
                                                const struct ferry_conn_key* in) {
  out->netns_cookie = in->netns_cookie;
  __builtin_memcpy(out->local_addr, in->remote_addr, 16);
  __builtin_memcpy(out->remote_addr, in->local_addr, 16);
  out->local_port = in->remote_port;
  out->remote_port = in->local_port;
  out->pad0 = 0;
}

#endif  // FERRY_BPF_LIB_CONN_H_
