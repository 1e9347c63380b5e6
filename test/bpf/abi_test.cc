// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The C++ layout of every shared struct (checked by static_assert in bpf/abi.h) matches what
// clang -target bpf actually compiled: member offsets from each BPF object's BTF, and the key
// and value sizes of every map. Opening a skeleton only parses the ELF, so this needs no root.
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cstddef>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "bpf/abi.h"
#include "ferry_connect.skel.h"
#include "ferry_sk_lookup.skel.h"
#include "ferry_sk_msg.skel.h"
#include "ferry_sockops.skel.h"

namespace {

struct Field {
  const char* name;
  size_t offset;
};

struct Layout {
  const char* type;
  size_t size;
  std::vector<Field> fields;
};

#define F(type, field)            \
  Field {                         \
#field, offsetof(type, field) \
  }

const std::vector<Layout>& layouts() {
  static const std::vector<Layout> kLayouts = {
      {"ferry_pod_config",
       sizeof(ferry_pod_config),
       {F(ferry_pod_config, outbound_addr4), F(ferry_pod_config, outbound_addr6),
        F(ferry_pod_config, outbound_port), F(ferry_pod_config, pad0),
        F(ferry_pod_config, pod_index), F(ferry_pod_config, flags)}},
      {"ferry_addr_key", sizeof(ferry_addr_key), {F(ferry_addr_key, addr)}},
      {"ferry_pod_addr_value",
       sizeof(ferry_pod_addr_value),
       {F(ferry_pod_addr_value, pod_index), F(ferry_pod_addr_value, flags)}},
      {"ferry_lpm_key",
       sizeof(ferry_lpm_key),
       {F(ferry_lpm_key, prefixlen), F(ferry_lpm_key, addr)}},
      {"ferry_cidr_value", sizeof(ferry_cidr_value), {F(ferry_cidr_value, kind)}},
      {"ferry_port_key",
       sizeof(ferry_port_key),
       {F(ferry_port_key, port), F(ferry_port_key, direction), F(ferry_port_key, pad0)}},
      {"ferry_port_value", sizeof(ferry_port_value), {F(ferry_port_value, reserved)}},
      {"ferry_conn_key",
       sizeof(ferry_conn_key),
       {F(ferry_conn_key, netns_cookie), F(ferry_conn_key, local_addr),
        F(ferry_conn_key, remote_addr), F(ferry_conn_key, local_port),
        F(ferry_conn_key, remote_port), F(ferry_conn_key, pad0)}},
      {"ferry_orig_dst",
       sizeof(ferry_orig_dst),
       {F(ferry_orig_dst, addr), F(ferry_orig_dst, port), F(ferry_orig_dst, family),
        F(ferry_orig_dst, pod_index)}},
      {"ferry_direct_key",
       sizeof(ferry_direct_key),
       {F(ferry_direct_key, src_addr), F(ferry_direct_key, dst_addr), F(ferry_direct_key, dst_port),
        F(ferry_direct_key, pad0)}},
      {"ferry_direct_value", sizeof(ferry_direct_value), {F(ferry_direct_value, reserved)}},
      {"ferry_direct_conn",
       sizeof(ferry_direct_conn),
       {F(ferry_direct_conn, key), F(ferry_direct_conn, src_port), F(ferry_direct_conn, family),
        F(ferry_direct_conn, netns_cookie)}},
  };
  return kLayouts;
}

#undef F

void checkObject(const bpf_object* obj) {
  const btf* types = bpf_object__btf(obj);
  REQUIRE(types != nullptr);
  for (const Layout& layout : layouts()) {
    INFO("struct " << layout.type << " in " << bpf_object__name(obj));
    int id = btf__find_by_name_kind(types, layout.type, BTF_KIND_STRUCT);
    REQUIRE(id > 0);
    const btf_type* t = btf__type_by_id(types, id);
    CHECK(t->size == layout.size);
    REQUIRE(btf_vlen(t) == layout.fields.size());
    const btf_member* members = btf_members(t);
    for (size_t i = 0; i < layout.fields.size(); ++i) {
      CHECK(std::string(btf__name_by_offset(types, members[i].name_off)) == layout.fields[i].name);
      CHECK(btf_member_bit_offset(t, i) / 8 == layout.fields[i].offset);
    }
  }
}

struct MapSizes {
  const char* name;
  size_t key;
  size_t value;
};

void checkMaps(const bpf_object* obj) {
  const MapSizes kMaps[] = {
      {"ferry_pods", sizeof(__u64), sizeof(ferry_pod_config)},
      {"ferry_pod_addrs", sizeof(ferry_addr_key), sizeof(ferry_pod_addr_value)},
      {"ferry_cidrs", sizeof(ferry_lpm_key), sizeof(ferry_cidr_value)},
      {"ferry_ports", sizeof(ferry_port_key), sizeof(ferry_port_value)},
      {"ferry_orig_ck", sizeof(__u64), sizeof(ferry_orig_dst)},
      {"ferry_conns", sizeof(ferry_conn_key), sizeof(ferry_orig_dst)},
      {"ferry_splice", sizeof(ferry_conn_key), sizeof(__u64)},
      {"ferry_in_lsn", sizeof(__u32), sizeof(__u64)},
      {"ferry_counters", sizeof(__u32), sizeof(__u64)},
      {"ferry_direct", sizeof(ferry_direct_key), sizeof(ferry_direct_value)},
      {"ferry_direct_ck", sizeof(__u64), sizeof(ferry_direct_conn)},
      {"ferry_events", 0, 0},
  };
  for (const MapSizes& m : kMaps) {
    INFO("map " << m.name << " in " << bpf_object__name(obj));
    const bpf_map* map = bpf_object__find_map_by_name(obj, m.name);
    REQUIRE(map != nullptr);
    CHECK(bpf_map__key_size(map) == m.key);
    CHECK(bpf_map__value_size(map) == m.value);
  }
}

template <typename Skel>
void checkSkeleton(Skel* (*open)(), void (*destroy)(Skel*)) {
  Skel* skel = open();
  REQUIRE(skel != nullptr);
  checkObject(skel->obj);
  checkMaps(skel->obj);
  destroy(skel);
}

TEST_CASE("shared ABI structs match the BTF of every BPF object", "[bpf][abi]") {
  checkSkeleton(&ferry_connect__open, &ferry_connect__destroy);
  checkSkeleton(&ferry_sk_lookup__open, &ferry_sk_lookup__destroy);
  checkSkeleton(&ferry_sockops__open, &ferry_sockops__destroy);
  checkSkeleton(&ferry_sk_msg__open, &ferry_sk_msg__destroy);
}

TEST_CASE("every counter has a metric name", "[bpf][abi]") {
  for (uint32_t c = 0; c < FERRY_CTR_COUNT; ++c) {
    CHECK(std::string(ferry::bpf::abi::counterName(c)) != "unknown");
  }
  CHECK(std::string(ferry::bpf::abi::counterName(FERRY_CTR_COUNT)) == "unknown");
}

}  // namespace
