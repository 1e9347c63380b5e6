// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "bpf/abi.h"

namespace ferry::bpf {

// Everything the capture loader needs, one named default per field, validated once by
// validateConfig() before anything touches the kernel.
struct BpfConfig {
  static constexpr uint32_t kDefaultMaxPods = FERRY_DEFAULT_MAX_PODS;
  static constexpr uint32_t kDefaultMaxCidrs = FERRY_DEFAULT_MAX_CIDRS;
  static constexpr uint32_t kDefaultMaxPorts = FERRY_DEFAULT_MAX_PORTS;
  static constexpr uint32_t kDefaultMaxConnections = FERRY_DEFAULT_MAX_CONNECTIONS;
  static constexpr uint32_t kDefaultMaxSpliced = FERRY_DEFAULT_MAX_SPLICED;
  static constexpr uint16_t kDefaultOutboundPort = FERRY_PORT_OUTBOUND;
  static constexpr const char* kDefaultBpffsRoot = "/sys/fs/bpf";

  // Per-node folder for pinned links and maps, under a bpffs mount (e.g.
  // /sys/fs/bpf/ferry-node1). A restarted agent finds its previous attachments here.
  std::string pin_dir;
  // cgroup v2 directory holding every pod of this node (connect4/6 and sockops go here).
  std::string pod_cgroup;
  // cgroup v2 directory of the agent (sockops for the agent's end of spliced connections).
  // Empty: the cgroup this process runs in.
  std::string agent_cgroup;
  // The bpffs mount the pin_dir lives under; mounted there if nothing is mounted yet.
  std::string bpffs_root = kDefaultBpffsRoot;
  // SO_MARK of the agent's sockets; connect4/6 never capture them. 0: no mark check.
  uint32_t agent_mark = 0;
  // Port of the agent's in-pod outbound listener that captured connects are sent to.
  uint16_t outbound_port = kDefaultOutboundPort;
  // Splice app <-> agent sockets with sockops + sk_msg instead of loopback TCP. Off by
  // default: a socket in a sockmap receives through tcp_bpf_recvmsg, which returns EAGAIN to a
  // blocking recv() woken without data (a half-close's FIN_WAIT2 state change), which an
  // unmodified app does not expect. See bpf/README.md, "Why it stays off".
  static constexpr bool kDefaultSplice = false;
  bool splice = kDefaultSplice;

  uint32_t max_pods = kDefaultMaxPods;                // enrolled pods
  uint32_t max_cidrs = kDefaultMaxCidrs;              // mesh CIDRs, both families
  uint32_t max_ports = kDefaultMaxPorts;              // excluded ports, both directions
  uint32_t max_connections = kDefaultMaxConnections;  // original-destination records (LRU)
  uint32_t max_spliced = kDefaultMaxSpliced;          // sockets in the splice sockhash
};

// Names the first bad field and why; OkStatus when the config can be used.
absl::Status validateConfig(const BpfConfig& config);

}  // namespace ferry::bpf
