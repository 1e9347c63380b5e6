// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
//
// The C++ view of bpf/include/ferry_abi.h. Including this file (the loader does) checks at
// compile time that the host compiler lays every shared struct out exactly as the BPF side
// documents it; test/bpf/abi_test.cc checks the same numbers against the compiled BPF objects'
// BTF. A mismatch is a build error, never a silently misread map.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ferry_abi.h"

namespace ferry::bpf::abi {

#define FERRY_ABI_LAYOUT(type, size) static_assert(sizeof(type) == (size), #type " size")
#define FERRY_ABI_OFFSET(type, field, off) \
  static_assert(offsetof(type, field) == (off), #type "." #field " offset")

FERRY_ABI_LAYOUT(ferry_pod_config, 32);
FERRY_ABI_OFFSET(ferry_pod_config, outbound_addr4, 0);
FERRY_ABI_OFFSET(ferry_pod_config, outbound_addr6, 4);
FERRY_ABI_OFFSET(ferry_pod_config, outbound_port, 20);
FERRY_ABI_OFFSET(ferry_pod_config, pad0, 22);
FERRY_ABI_OFFSET(ferry_pod_config, pod_index, 24);
FERRY_ABI_OFFSET(ferry_pod_config, flags, 28);

FERRY_ABI_LAYOUT(ferry_addr_key, 16);
FERRY_ABI_OFFSET(ferry_addr_key, addr, 0);

FERRY_ABI_LAYOUT(ferry_pod_addr_value, 8);
FERRY_ABI_OFFSET(ferry_pod_addr_value, pod_index, 0);
FERRY_ABI_OFFSET(ferry_pod_addr_value, flags, 4);

FERRY_ABI_LAYOUT(ferry_lpm_key, 20);
FERRY_ABI_OFFSET(ferry_lpm_key, prefixlen, 0);
FERRY_ABI_OFFSET(ferry_lpm_key, addr, 4);

FERRY_ABI_LAYOUT(ferry_cidr_value, 4);

FERRY_ABI_LAYOUT(ferry_port_key, 4);
FERRY_ABI_OFFSET(ferry_port_key, port, 0);
FERRY_ABI_OFFSET(ferry_port_key, direction, 2);
FERRY_ABI_OFFSET(ferry_port_key, pad0, 3);

FERRY_ABI_LAYOUT(ferry_port_value, 4);

FERRY_ABI_LAYOUT(ferry_conn_key, 48);
FERRY_ABI_OFFSET(ferry_conn_key, netns_cookie, 0);
FERRY_ABI_OFFSET(ferry_conn_key, local_addr, 8);
FERRY_ABI_OFFSET(ferry_conn_key, remote_addr, 24);
FERRY_ABI_OFFSET(ferry_conn_key, local_port, 40);
FERRY_ABI_OFFSET(ferry_conn_key, remote_port, 42);
FERRY_ABI_OFFSET(ferry_conn_key, pad0, 44);

FERRY_ABI_LAYOUT(ferry_orig_dst, 24);
FERRY_ABI_OFFSET(ferry_orig_dst, addr, 0);
FERRY_ABI_OFFSET(ferry_orig_dst, port, 16);
FERRY_ABI_OFFSET(ferry_orig_dst, family, 18);
FERRY_ABI_OFFSET(ferry_orig_dst, pod_index, 20);

FERRY_ABI_LAYOUT(ferry_direct_key, 36);
FERRY_ABI_OFFSET(ferry_direct_key, src_addr, 0);
FERRY_ABI_OFFSET(ferry_direct_key, dst_addr, 16);
FERRY_ABI_OFFSET(ferry_direct_key, dst_port, 32);
FERRY_ABI_OFFSET(ferry_direct_key, pad0, 34);

FERRY_ABI_LAYOUT(ferry_direct_value, 4);

FERRY_ABI_LAYOUT(ferry_direct_conn, 48);
FERRY_ABI_OFFSET(ferry_direct_conn, key, 0);
FERRY_ABI_OFFSET(ferry_direct_conn, src_port, 36);
FERRY_ABI_OFFSET(ferry_direct_conn, family, 38);
FERRY_ABI_OFFSET(ferry_direct_conn, netns_cookie, 40);

FERRY_ABI_LAYOUT(ferry_direct_event, 88);
FERRY_ABI_OFFSET(ferry_direct_event, type, 0);
FERRY_ABI_OFFSET(ferry_direct_event, old_state, 4);
FERRY_ABI_OFFSET(ferry_direct_event, cookie, 8);
FERRY_ABI_OFFSET(ferry_direct_event, conn, 16);
FERRY_ABI_OFFSET(ferry_direct_event, bytes_sent, 64);
FERRY_ABI_OFFSET(ferry_direct_event, bytes_received, 72);
FERRY_ABI_OFFSET(ferry_direct_event, error, 80);

#undef FERRY_ABI_LAYOUT
#undef FERRY_ABI_OFFSET

static_assert(FERRY_CTR_COUNT == 17, "counterName() in abi.cc must name every counter");

// Stable snake_case name of a ferry_counter, used for metrics ("unknown" past the end).
const char* counterName(uint32_t counter);

}  // namespace ferry::bpf::abi
