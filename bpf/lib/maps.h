// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Copyright Ferry authors.
//
// Every map, defined once. Each .bpf.c includes this file, so each skeleton carries the same
// definitions; the loader creates each map once and hands the same fd to every skeleton
// (bpf_map__reuse_fd) before load. Sizes here are defaults: the loader sets max_entries from
// its BpfConfig. Key and value types come from ferry_abi.h.
#ifndef FERRY_BPF_LIB_MAPS_H_
#define FERRY_BPF_LIB_MAPS_H_

#include "ferry_abi.h"

// Enrolled pods by network-namespace cookie.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, FERRY_DEFAULT_MAX_PODS);
  __type(key, __u64);
  __type(value, struct ferry_pod_config);
} ferry_pods SEC(".maps");

// Enrolled pods by pod IP, for sk_lookup (it has no netns cookie helper).
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 2 * FERRY_DEFAULT_MAX_PODS);
  __type(key, struct ferry_addr_key);
  __type(value, struct ferry_pod_addr_value);
} ferry_pod_addrs SEC(".maps");

// The mesh: pod and service CIDRs, IPv4 stored IPv4-mapped.
struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, FERRY_DEFAULT_MAX_CIDRS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct ferry_lpm_key);
  __type(value, struct ferry_cidr_value);
} ferry_cidrs SEC(".maps");

// Ports left alone, per direction.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, FERRY_DEFAULT_MAX_PORTS);
  __type(key, struct ferry_port_key);
  __type(value, struct ferry_port_value);
} ferry_ports SEC(".maps");

// Original destination by app socket cookie, between connect() and TCP_CONNECT_CB. LRU: a
// connect that never reaches TCP_CONNECT_CB (e.g. routing error) must not leak a slot forever.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, FERRY_DEFAULT_MAX_CONNECTIONS);
  __type(key, __u64);
  __type(value, struct ferry_orig_dst);
} ferry_orig_ck SEC(".maps");

// Original destination by the app socket's view of the rewritten connection.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, FERRY_DEFAULT_MAX_CONNECTIONS);
  __type(key, struct ferry_conn_key);
  __type(value, struct ferry_orig_dst);
} ferry_conns SEC(".maps");

// Both ends of each local app <-> agent connection; sk_msg redirects between them.
struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, FERRY_DEFAULT_MAX_SPLICED);
  __type(key, struct ferry_conn_key);
  __type(value, __u64);
} ferry_splice SEC(".maps");

// The agent's inbound (15006) listeners, at FERRY_LISTENER_SLOT(pod_index, is_v6).
struct {
  __uint(type, BPF_MAP_TYPE_SOCKMAP);
  __uint(max_entries, 2 * FERRY_DEFAULT_MAX_PODS);
  __type(key, __u32);
  __type(value, __u64);
} ferry_in_lsn SEC(".maps");

// Same-node pairs that go direct (see ferry_abi.h); written by the agent only.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, FERRY_DEFAULT_MAX_DIRECT);
  __type(key, struct ferry_direct_key);
  __type(value, struct ferry_direct_value);
} ferry_direct SEC(".maps");

// Direct connections by client socket cookie, from connect() to close. LRU like ferry_orig_ck:
// a connect that never gets as far as TCP_CONNECT_CB must not hold a slot forever.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, FERRY_DEFAULT_MAX_CONNECTIONS);
  __type(key, __u64);
  __type(value, struct ferry_direct_conn);
} ferry_direct_ck SEC(".maps");

// Opened/closed events of direct connections, for the agent's telemetry.
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, FERRY_EVENTS_BYTES);
} ferry_events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, FERRY_CTR_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} ferry_counters SEC(".maps");

#endif  // FERRY_BPF_LIB_MAPS_H_
