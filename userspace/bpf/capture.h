// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
//
// The capture loader: loads bpf/'s programs, attaches them with bpf_links pinned under the
// node's bpffs folder, and is the agent's handle on the kernel half of the mesh.
//
// Lifetime: destroying a Capture closes its descriptors but leaves the pinned links (and the
// pinned maps they use) in place, so traffic stays captured — fail closed — while the agent
// restarts. The next Capture::start() with the same pin_dir finds the pinned links and swaps
// its freshly loaded programs into them (bpf_link_update: no gap) and reuses the pinned maps
// (enrolled pods, CIDRs, records survive). detachAll() is the only way to stop capturing.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/abi.h"
#include "bpf/config.h"
#include "bpf/fd.h"
#include "bpf/sys.h"
#include "net/ip.h"

struct ring_buffer;  // libbpf's

namespace ferry::bpf {

struct PodSpec {
  std::string netns_path;  // e.g. /run/netns/ferry-x-n1p1
  std::string ipv4;        // the pod's IPv4 address, empty if none
  std::string ipv6;        // the pod's IPv6 address, empty if none
  bool opt_out = false;    // enrolled but not captured (inbound nor outbound)
};

struct PodHandle {
  uint32_t index = 0;  // also the source pod reported with original destinations
  uint64_t netns_cookie = 0;
};

struct OriginalDestination {
  sockaddr_storage address{};  // AF_INET or AF_INET6 with the port set
  int family = 0;              // the family the app connected with
  uint32_t pod_index = 0;      // the source pod
  std::string toString() const;
};

struct Counters {
  std::array<uint64_t, FERRY_CTR_COUNT> values{};
  uint64_t operator[](ferry_counter c) const { return values[c]; }
};

enum class PortDirection : uint8_t {
  kOutbound = FERRY_DIR_OUTBOUND,  // destination ports a connect is never captured for
  kInbound = FERRY_DIR_INBOUND,    // pod ports sk_lookup never steers (e.g. kubelet probes)
};

// A same-node pair the agent authorized for the direct path: connects from the pod at `source`
// to `destination`:`port` are neither redirected nor steered (bpf/README.md, "Same-node direct
// path"). Addresses are IPv4-mapped for IPv4.
struct DirectPair {
  net::Addr16 source{};
  net::Addr16 destination{};
  uint16_t port = 0;
  auto operator<=>(const DirectPair&) const = default;
  std::string toString() const;
};

// A live direct connection, as its client socket sees it.
struct DirectConnection {
  uint64_t cookie = 0;  // the client socket's
  DirectPair pair;
  uint16_t source_port = 0;   // 0 while the connect has not sent its SYN
  int family = 0;             // AF_INET or AF_INET6: the client socket's family
  uint64_t netns_cookie = 0;  // the client's namespace (0 with source_port)
};

// What sockops reports of a direct connection (ferry_events).
struct DirectEvent {
  enum class Kind { kOpened, kClosed };
  Kind kind = Kind::kOpened;
  DirectConnection connection;
  // kClosed: payload each way from the client socket's counters; its error (ECONNRESET: reset);
  // whether it closed before it was established (the connect failed).
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  int error = 0;
  bool connect_failed = false;
};

// Reads ferry_events. fd() turns readable when events wait; poll() hands each to the callback.
class DirectEvents {
 public:
  using OnEvent = std::function<void(const DirectEvent&)>;
  DirectEvents(struct ring_buffer* ring, std::unique_ptr<OnEvent> on_event);
  ~DirectEvents();
  DirectEvents(const DirectEvents&) = delete;
  DirectEvents& operator=(const DirectEvents&) = delete;
  int fd() const;
  // Handles every event waiting; returns how many, or -errno.
  int poll();

 private:
  struct ring_buffer* ring_;
  std::unique_ptr<OnEvent> on_event_;
};

// IDs of what one Capture loaded and attached, for tests and `ferryctl` diagnostics.
struct KernelObjectIds {
  std::vector<uint32_t> programs;
  std::vector<uint32_t> links;
};

class Capture {
 public:
  // Probes features, mounts bpffs if needed, loads, attaches (or replaces pinned links).
  static absl::StatusOr<std::unique_ptr<Capture>> start(const BpfConfig& config);
  // Detaches and unpins everything under pin_dir, with or without a running Capture (e.g.
  // after a crash). Leaves no Ferry program attached once the last fd is closed.
  static absl::Status detachAll(const std::string& pin_dir);

  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // detachAll(pin_dir) plus dropping this instance's own link descriptors. The programs are
  // gone from the kernel when this Capture is destroyed.
  absl::Status detachAll();

  // Enrolls (or updates) the pod whose network namespace is at spec.netns_path: captured
  // from now on, and its inbound steered to the listener set with setInboundListener (refused
  // until there is one).
  absl::StatusOr<PodHandle> enrollPod(const PodSpec& spec);
  absl::Status unenrollPod(const std::string& netns_path);
  absl::Status unenrollPod(uint64_t netns_cookie);  // for a namespace that is already gone

  // The agent's 15006 listener for a pod: AF_INET fills the IPv4 slot, AF_INET6 the IPv6 slot
  // and, unless IPV6_V6ONLY, the IPv4 slot too.
  absl::Status setInboundListener(uint32_t pod_index, int listener_fd);
  absl::Status clearInboundListener(uint32_t pod_index);

  // Replace the whole set (entries not listed are removed).
  absl::Status setMeshCidrs(const std::vector<std::string>& pod_cidrs,
                            const std::vector<std::string>& service_cidrs);
  absl::Status setExcludedPorts(PortDirection direction, const std::vector<uint16_t>& ports);

  // Where the app behind an accepted outbound-listener socket wanted to go, and from which pod.
  absl::StatusOr<OriginalDestination> originalDestination(int accepted_fd) const;

  // The same-node direct path (capture_direct.cc). Pairs are the agent's to add and remove;
  // connections are what the kernel has open now.
  absl::Status addDirectPair(const DirectPair& pair);
  void removeDirectPair(const DirectPair& pair);
  std::vector<DirectPair> directPairs() const;
  std::vector<DirectConnection> directConnections() const;
  absl::StatusOr<std::unique_ptr<DirectEvents>> openDirectEvents(DirectEvents::OnEvent on_event);

  absl::StatusOr<Counters> counters() const;
  // Gauges for metrics and tests: sockets in the splice sockhash, original-destination records.
  absl::StatusOr<size_t> splicedSocketCount() const;
  absl::StatusOr<size_t> originalDestinationCount() const;
  KernelObjectIds kernelObjectIds() const;
  // Things start() worked around (a map recreated because its size changed, ...).
  const std::vector<std::string>& notes() const { return notes_; }

  struct Skeletons;  // the four libbpf skeletons, defined in capture.cc

 private:
  struct PodState {
    uint32_t index = 0;
    uint64_t cookie = 0;
    std::vector<net::Addr16> addresses;
    UniqueFd link;
  };

  Capture(BpfConfig config, std::unique_ptr<Skeletons> skeletons);
  absl::Status load();
  absl::Status attachAll();
  absl::Status recoverPods();
  // Attaches prog to target, replacing the program in a pinned link of that name if there is
  // one still pointing at the same target (target_id: cgroup id / netns inode, 0 = unchecked).
  absl::StatusOr<UniqueFd> attachPinned(const std::string& name, int prog_fd, int target_fd,
                                        int attach_type, uint64_t target_id);
  std::string linkPin(const std::string& name) const;
  // Detaches and unpins a link a previous run left that nothing wants now; noted in notes_.
  void removeStaleLink(const std::string& name);
  absl::StatusOr<uint32_t> allocateIndex() const;
  void removePod(PodState& pod);
  int mapFd(int which) const;

  BpfConfig config_;
  std::unique_ptr<Skeletons> skels_;
  std::vector<UniqueFd> links_;
  bool sk_msg_prog_attached_ = false;  // fell back to bpf_prog_attach (no sockmap links)
  std::vector<std::string> notes_;
  mutable std::mutex mu_;
  std::map<uint64_t, PodState> pods_;  // by netns cookie
};

}  // namespace ferry::bpf
