// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Copyright Ferry authors.
//
// The smallest program the build makes: it proves the BPF toolchain (vmlinux.h, clang -target
// bpf, bpftool gen skeleton) and the skeleton loader work. It counts how often it runs.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile __u32 ferry_hello_increment = 1;

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} hello_runs SEC(".maps");

SEC("socket")
int ferry_hello(struct __sk_buff *skb) {
  __u32 key = 0;
  __u64 *runs = bpf_map_lookup_elem(&hello_runs, &key);
  if (runs) {
    __sync_fetch_and_add(runs, ferry_hello_increment);
  }
  return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
