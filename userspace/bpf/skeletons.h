// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
//
// RAII owners for the generated skeletons, and each skeleton's maps as a typed array in one
// fixed order (every skeleton carries the same maps from bpf/lib/maps.h). Private to the
// loader: nothing outside userspace/bpf/ sees libbpf skeleton types.
#pragma once

#include <array>
#include <memory>

#include "bpf/capture.h"
#include "ferry_connect.skel.h"
#include "ferry_sk_lookup.skel.h"
#include "ferry_sk_msg.skel.h"
#include "ferry_sockops.skel.h"

namespace ferry::bpf {

// The generated __destroy functions are static inline (internal linkage), so they cannot be
// template arguments of a type with external linkage; a named deleter per skeleton can.
#define FERRY_SKELETON_PTR(name)                                        \
  struct name##Deleter {                                                \
    void operator()(struct name* skel) const { name##__destroy(skel); } \
  };                                                                    \
  using name##Ptr = std::unique_ptr<struct name, name##Deleter>

FERRY_SKELETON_PTR(ferry_connect);
FERRY_SKELETON_PTR(ferry_sk_lookup);
FERRY_SKELETON_PTR(ferry_sockops);
FERRY_SKELETON_PTR(ferry_sk_msg);

#undef FERRY_SKELETON_PTR

enum MapId {
  kMapPods,
  kMapPodAddrs,
  kMapCidrs,
  kMapPorts,
  kMapOrigByCookie,
  kMapConns,
  kMapSplice,
  kMapInboundListeners,
  kMapCounters,
  kMapDirect,
  kMapDirectConns,
  kMapEvents,
  kMapCount,
};

using MapArray = std::array<bpf_map*, kMapCount>;

template <typename Skel>
MapArray mapsOf(Skel* s) {
  return {s->maps.ferry_pods,   s->maps.ferry_pod_addrs, s->maps.ferry_cidrs,
          s->maps.ferry_ports,  s->maps.ferry_orig_ck,   s->maps.ferry_conns,
          s->maps.ferry_splice, s->maps.ferry_in_lsn,    s->maps.ferry_counters,
          s->maps.ferry_direct, s->maps.ferry_direct_ck, s->maps.ferry_events};
}

struct Capture::Skeletons {
  ferry_connectPtr connect{ferry_connect__open()};
  ferry_sk_lookupPtr sk_lookup{ferry_sk_lookup__open()};
  ferry_sockopsPtr sockops{ferry_sockops__open()};
  ferry_sk_msgPtr sk_msg{ferry_sk_msg__open()};

  bool opened() const { return connect && sk_lookup && sockops && sk_msg; }
  // The first skeleton creates (or reuses) the maps; the others get the same fds.
  std::array<MapArray, 4> maps() const {
    return {mapsOf(connect.get()), mapsOf(sk_lookup.get()), mapsOf(sockops.get()),
            mapsOf(sk_msg.get())};
  }
  int fd(MapId id) const { return bpf_map__fd(mapsOf(connect.get())[id]); }
};

}  // namespace ferry::bpf
