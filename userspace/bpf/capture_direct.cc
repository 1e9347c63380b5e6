// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Capture: the same-node direct path's maps (ferry_direct, ferry_direct_ck) and its events.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "bpf/capture.h"
#include "bpf/skeletons.h"
#include "net/ip.h"

namespace ferry::bpf {
namespace {

ferry_direct_key keyOf(const DirectPair& pair) {
  ferry_direct_key k{};
  std::memcpy(k.src_addr, pair.source.data(), 16);
  std::memcpy(k.dst_addr, pair.destination.data(), 16);
  k.dst_port = pair.port;
  return k;
}

DirectPair pairOf(const ferry_direct_key& k) {
  DirectPair pair;
  std::memcpy(pair.source.data(), k.src_addr, 16);
  std::memcpy(pair.destination.data(), k.dst_addr, 16);
  pair.port = k.dst_port;
  return pair;
}

DirectConnection connectionOf(uint64_t cookie, const ferry_direct_conn& c) {
  return {.cookie = cookie,
          .pair = pairOf(c.key),
          .source_port = c.src_port,
          .family = c.family,
          .netns_cookie = c.netns_cookie};
}

int onRingEvent(void* ctx, void* data, size_t size) {
  if (size < sizeof(ferry_direct_event)) {
    return 0;
  }
  ferry_direct_event e;
  std::memcpy(&e, data, sizeof(e));
  DirectEvent event{
      .kind = e.type == FERRY_EVENT_DIRECT_CLOSE ? DirectEvent::Kind::kClosed
                                                 : DirectEvent::Kind::kOpened,
      .connection = connectionOf(e.cookie, e.conn),
      .bytes_sent = e.bytes_sent,
      .bytes_received = e.bytes_received,
      .error = static_cast<int>(e.error),
      .connect_failed = e.type == FERRY_EVENT_DIRECT_CLOSE && e.old_state == BPF_TCP_SYN_SENT,
  };
  (*static_cast<DirectEvents::OnEvent*>(ctx))(event);
  return 0;
}

}  // namespace

std::string DirectPair::toString() const {
  return absl::StrCat(net::IpAddress::fromAddr16(source).str(), " -> ",
                      net::IpAddress::fromAddr16(destination).str(), ":", port);
}

DirectEvents::DirectEvents(struct ring_buffer* ring, std::unique_ptr<OnEvent> on_event)
    : ring_(ring), on_event_(std::move(on_event)) {}

DirectEvents::~DirectEvents() {
  ring_buffer__free(ring_);
}

int DirectEvents::fd() const {
  return ring_buffer__epoll_fd(ring_);
}

int DirectEvents::poll() {
  return ring_buffer__consume(ring_);
}

absl::Status Capture::addDirectPair(const DirectPair& pair) {
  ferry_direct_key k = keyOf(pair);
  ferry_direct_value v{};
  if (bpf_map_update_elem(mapFd(kMapDirect), &k, &v, BPF_ANY) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("adding direct pair ", pair.toString()));
  }
  return absl::OkStatus();
}

void Capture::removeDirectPair(const DirectPair& pair) {
  ferry_direct_key k = keyOf(pair);
  bpf_map_delete_elem(mapFd(kMapDirect), &k);
}

std::vector<DirectPair> Capture::directPairs() const {
  std::vector<DirectPair> pairs;
  int fd = mapFd(kMapDirect);
  ferry_direct_key key{}, next{};
  const ferry_direct_key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    pairs.push_back(pairOf(next));
    key = next;
    prev = &key;
  }
  return pairs;
}

std::vector<DirectConnection> Capture::directConnections() const {
  std::vector<DirectConnection> connections;
  int fd = mapFd(kMapDirectConns);
  uint64_t key = 0, next = 0;
  const uint64_t* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    ferry_direct_conn c{};
    if (bpf_map_lookup_elem(fd, &next, &c) == 0) {
      connections.push_back(connectionOf(next, c));
    }
    key = next;
    prev = &key;
  }
  return connections;
}

absl::StatusOr<std::unique_ptr<DirectEvents>> Capture::openDirectEvents(
    DirectEvents::OnEvent on_event) {
  auto callback = std::make_unique<DirectEvents::OnEvent>(std::move(on_event));
  struct ring_buffer* ring =
      ring_buffer__new(mapFd(kMapEvents), &onRingEvent, callback.get(), nullptr);
  if (ring == nullptr) {
    return absl::ErrnoToStatus(errno, "opening the ferry_events ring buffer");
  }
  return std::make_unique<DirectEvents>(ring, std::move(callback));
}

}  // namespace ferry::bpf
