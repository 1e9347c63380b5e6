// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Copyright Ferry authors.
//
// Small helpers every program uses: counters and the address normal form of ferry_abi.h.
#ifndef FERRY_BPF_LIB_COMMON_H_
#define FERRY_BPF_LIB_COMMON_H_

// vmlinux.h first: the libbpf headers need its kernel types.
#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ferry_abi.h"
#include "lib/maps.h"

#define FERRY_IPPROTO_TCP 6

// A context field read through a volatile load. The verifier only accepts ctx accesses at a
// constant offset from the ctx pointer itself; reading every address word unconditionally this
// way stops clang from merging the IPv4/IPv6 branches into pointer arithmetic on ctx.
#define FERRY_CTX_READ(ctx, field) (*(volatile __u32*)&(ctx)->field)

static __always_inline void ferry_count(__u32 counter) {
  __u64* value = bpf_map_lookup_elem(&ferry_counters, &counter);
  if (value) {
    *value += 1;  // per-CPU slot: no atomics needed
  }
}

// IPv4 (network order) -> IPv4-mapped IPv6.
static __always_inline void ferry_addr_v4(__u8 out[16], __u32 ip4) {
  __u32* words = (__u32*)out;
  words[0] = 0;
  words[1] = 0;
  words[2] = bpf_htonl(0x0000ffff);
  words[3] = ip4;
}

static __always_inline void ferry_addr_v6(__u8 out[16], const __u32 w0, const __u32 w1,
                                          const __u32 w2, const __u32 w3) {
  __u32* words = (__u32*)out;
  words[0] = w0;
  words[1] = w1;
  words[2] = w2;
  words[3] = w3;
}

static __always_inline int ferry_addr_equal(const __u8 a[16], const __u8 b[16]) {
  const __u32* x = (const __u32*)a;
  const __u32* y = (const __u32*)b;
  return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

#endif  // FERRY_BPF_LIB_COMMON_H_
