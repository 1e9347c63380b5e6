// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Copyright Ferry authors.
//
// The one header the BPF programs and the C++ loader share: every map key and value, every
// constant both sides must agree on. Only fixed-width types, padding spelled out, no bitfields,
// so the layout is the same for clang -target bpf and for the host compiler. The C++ side
// checks sizes and offsets with static_assert (userspace/bpf/abi.h); change both together.
//
// Conventions, the same in every struct:
//   - addresses are 16 bytes in network byte order; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d),
//     so one key type serves connect4, connect6 on dual-stack sockets, and the LPM trie;
//   - ports are in host byte order (each hook hands them over differently; the programs
//     convert at the edge so nothing else has to remember).
#ifndef FERRY_BPF_ABI_H_
#define FERRY_BPF_ABI_H_

#if defined(__bpf__)
// BPF objects include vmlinux.h first, which defines the __uN types.
#else
#include <linux/types.h>
#endif

// Ports the agent listens on inside each enrolled pod's network namespace (DESIGN.md).
#define FERRY_PORT_OUTBOUND 15001
#define FERRY_PORT_INBOUND 15006
#define FERRY_PORT_HBONE 15008

#define FERRY_AF_INET 2
#define FERRY_AF_INET6 10

// Default map sizes; the loader's BpfConfig overrides them before load.
#define FERRY_DEFAULT_MAX_PODS 1024
#define FERRY_DEFAULT_MAX_CIDRS 256
#define FERRY_DEFAULT_MAX_PORTS 256
#define FERRY_DEFAULT_MAX_CONNECTIONS 65536
#define FERRY_DEFAULT_MAX_SPLICED 65536
#define FERRY_DEFAULT_MAX_DIRECT 65536
#define FERRY_EVENTS_BYTES (256 * 1024)  // the ring buffer of direct-connection events

// ferry_in_lsn holds two slots per pod: an IPv4 and an IPv6 inbound listener (a dual-stack
// listener fills both).
#define FERRY_LISTENER_SLOT(pod_index, is_v6) ((pod_index)*2 + ((is_v6) ? 1 : 0))

// ---- ferry_pods: enrolled pod network-namespace cookie (__u64) -> pod config ----------------

// The pod does not want its traffic captured (annotation). Enrolled, but left alone.
#define FERRY_POD_F_OPT_OUT (1u << 0)

struct ferry_pod_config {
  // Where captured connects go: the agent's in-pod outbound listener. An all-zero address for a
  // family means "no listener for that family": such connects are refused, never let through.
  __u8 outbound_addr4[4];   // network order
  __u8 outbound_addr6[16];  // network order
  __u16 outbound_port;      // host order
  __u16 pad0;
  __u32 pod_index;  // the loader's number for this pod; see FERRY_LISTENER_SLOT
  __u32 flags;      // FERRY_POD_F_*
};

// ---- ferry_pod_addrs: pod IP -> pod (for sk_lookup, which has no netns cookie helper) -------

struct ferry_addr_key {
  __u8 addr[16];  // IPv4-mapped for IPv4
};

struct ferry_pod_addr_value {
  __u32 pod_index;
  __u32 flags;  // FERRY_POD_F_*
};

// ---- ferry_mesh_cidrs: LPM trie of the mesh's pod and service ranges ------------------------

// prefixlen counts bits of addr; an IPv4 /N is stored as the IPv4-mapped /(96+N).
struct ferry_lpm_key {
  __u32 prefixlen;
  __u8 addr[16];
};

#define FERRY_CIDR_KIND_POD 1
#define FERRY_CIDR_KIND_SERVICE 2

struct ferry_cidr_value {
  __u32 kind;  // FERRY_CIDR_KIND_*, for counters and debugging only
};

// ---- ferry_ports: ports left alone, per direction -----------------------------------------

#define FERRY_DIR_OUTBOUND 1  // connect() to this destination port is not captured
#define FERRY_DIR_INBOUND 2   // connections to this pod port are not steered (e.g. probes)

struct ferry_port_key {
  __u16 port;  // host order
  __u8 direction;
  __u8 pad0;
};

struct ferry_port_value {
  __u32 reserved;
};

// ---- ferry_conns / ferry_spliced: one TCP connection seen from one of its ends ------------

// Also the sockhash key. local/remote are from the socket's own point of view, so the peer of
// a local connection has the same key with the two ends swapped.
struct ferry_conn_key {
  __u64 netns_cookie;
  __u8 local_addr[16];
  __u8 remote_addr[16];
  __u16 local_port;   // host order
  __u16 remote_port;  // host order
  __u32 pad0;
};

// ---- ferry_orig_by_cookie / ferry_conns: the destination the app asked for ---------------

// connect4/6 stores it under the app socket's cookie (the source port is not chosen yet);
// sockops moves it at TCP_CONNECT_CB to ferry_conns under the app socket's ferry_conn_key, so
// the agent finds it from its accepted socket with the two ends swapped.
struct ferry_orig_dst {
  __u8 addr[16];    // IPv4-mapped for IPv4
  __u16 port;       // host order
  __u16 family;     // FERRY_AF_INET or FERRY_AF_INET6: the family the app used
  __u32 pod_index;  // the source pod
};

// ---- ferry_direct: same-node pairs the agent authorized as L4-only ------------------------

// A connect from an enrolled pod to another enrolled pod of this node, on a port the agent
// decided carries L4 only and that its policy allows: connect4/6 leaves it alone and sk_lookup
// lets it in, so the kernel carries the bytes between the two app sockets with nobody between
// (bpf/README.md, "Same-node direct path"). The agent adds and removes entries; the programs
// only read them.
struct ferry_direct_key {
  __u8 src_addr[16];  // the source pod's address, IPv4-mapped for IPv4
  __u8 dst_addr[16];  // the destination pod's address the app connected to
  __u16 dst_port;     // host order
  __u16 pad0;
};

struct ferry_direct_value {
  __u32 reserved;
};

// ---- ferry_direct_ck: direct connections by the client socket's cookie ---------------------

// Filed by connect4/6, completed by sockops at TCP_CONNECT_CB, removed at close. The agent
// walks it to find the live connections of a pair whose policy now denies them.
struct ferry_direct_conn {
  struct ferry_direct_key key;
  __u16 src_port;      // host order; 0 until TCP_CONNECT_CB
  __u16 family;        // the socket's family (FERRY_AF_INET6 for a dual-stack socket)
  __u64 netns_cookie;  // the client's namespace; 0 until TCP_CONNECT_CB
};

// ---- ferry_events: ring buffer the agent reads ----------------------------------------------

#define FERRY_EVENT_DIRECT_OPEN 1   // a direct connection is established (client side)
#define FERRY_EVENT_DIRECT_CLOSE 2  // ... and has closed, with what it carried

struct ferry_direct_event {
  __u32 type;       // FERRY_EVENT_*
  __u32 old_state;  // CLOSE: the TCP state the socket closed from (BPF_TCP_*)
  __u64 cookie;     // the client socket
  struct ferry_direct_conn conn;
  __u64 bytes_sent;      // CLOSE: payload the client sent (retransmissions and SYN/FIN excluded)
  __u64 bytes_received;  // CLOSE: payload the client received (the peer's FIN excluded)
  __u32 error;           // CLOSE: the socket's error (ECONNRESET: reset), 0 if none
  __u32 pad0;
};

// ---- ferry_counters: per-CPU array, one __u64 per reason ---------------------------------

enum ferry_counter {
  FERRY_CTR_CONNECT_CAPTURED = 0,   // connect rewritten to the outbound listener
  FERRY_CTR_CONNECT_EXCLUDED_PORT,  // enrolled, in the mesh, but the port is excluded
  FERRY_CTR_CONNECT_OPTED_OUT,      // enrolled pod that opted out
  FERRY_CTR_CONNECT_NOT_MESH,       // enrolled pod, destination outside the mesh CIDRs
  FERRY_CTR_CONNECT_AGENT_SOCKET,   // socket carries the agent's mark: never captured
  FERRY_CTR_CONNECT_REFUSED,        // no outbound address for the family: refused (EPERM)
  FERRY_CTR_CONNECT_NO_LISTENER,    // captured connect ended in SYN_SENT -> CLOSE (refused)
  FERRY_CTR_ORIG_DST_RECORDED,      // original destination filed under the connection
  FERRY_CTR_INBOUND_STEERED,        // sk_lookup picked the agent's inbound listener
  FERRY_CTR_INBOUND_EXCLUDED,       // sk_lookup left an excluded port alone
  FERRY_CTR_INBOUND_REFUSED,        // enrolled pod, no inbound listener: refused
  FERRY_CTR_SPLICED,                // socket added to the splice sockhash
  FERRY_CTR_SPLICE_MSGS,            // sk_msg redirected a message to the peer socket
  FERRY_CTR_SPLICE_MISS,            // sk_msg found no peer: message took the TCP path
  FERRY_CTR_CONNECT_DIRECT,         // connect of an authorized same-node pair left alone
  FERRY_CTR_INBOUND_DIRECT,         // sk_lookup let an authorized same-node pair in
  FERRY_CTR_DIRECT_EVENT_LOST,      // ring buffer full: a direct-connection event was lost
  FERRY_CTR_COUNT,
};

#endif  // FERRY_BPF_ABI_H_
