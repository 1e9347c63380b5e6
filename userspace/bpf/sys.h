// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
//
// The loader's small contacts with the rest of the system: bpffs, cgroup v2, network
// namespaces, and the address normal form of ferry_abi.h.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::bpf {

// Mounts bpffs at `root` unless one is mounted there already (creating the folder if needed).
absl::Status ensureBpffs(const std::string& root);
// mkdir -p.
absl::Status makeDirs(const std::string& path);
// Regular file names in a folder (empty when the folder does not exist).
std::vector<std::string> listDir(const std::string& path);

// True when `path` is on a cgroup v2 filesystem.
bool isCgroup2(const std::string& path);
// The cgroup v2 directory this process runs in, from /proc/self/cgroup and the mount table.
absl::StatusOr<std::string> selfCgroupPath();
// A cgroup's id, as bpf_link_info reports it (the inode number of its directory).
absl::StatusOr<uint64_t> cgroupId(const std::string& path);

// The network-namespace cookie of the namespace at `netns_path` (e.g. /run/netns/x): a socket
// is opened there on a short-lived thread and asked for SO_NETNS_COOKIE.
absl::StatusOr<uint64_t> netnsCookie(const std::string& netns_path);
// The network-namespace cookie of the namespace a socket lives in.
absl::StatusOr<uint64_t> socketNetnsCookie(int fd);

// An address in ferry_abi.h's normal form (16 bytes, IPv4 as IPv4-mapped).
using Addr16 = std::array<uint8_t, 16>;
absl::StatusOr<Addr16> parseAddress(const std::string& text);
// "a.b.c.d/n" or "x::/n" -> (address, prefix length over the 128-bit normal form).
absl::StatusOr<std::pair<Addr16, uint32_t>> parseCidr(const std::string& text);
bool isV4Mapped(const Addr16& addr);
// sockaddr (v4, v6 or v4-mapped v6) -> normal form + host-order port.
Addr16 addressOf(const sockaddr_storage& sa, uint16_t* port);
// Normal form + port -> sockaddr (AF_INET for IPv4-mapped, else AF_INET6).
sockaddr_storage sockaddrOf(const Addr16& addr, uint16_t port);
std::string formatAddress(const Addr16& addr, uint16_t port);

}  // namespace ferry::bpf
