// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The build's BPF function works end to end: the skeleton it generated opens, the kernel's
// verifier accepts the program, and BPF_PROG_TEST_RUN runs it with the load-time knob applied.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <memory>

#include "ferry_hello.skel.h"
#include "privileged.h"

namespace {

struct SkelDeleter {
  void operator()(ferry_hello* skel) const { ferry_hello__destroy(skel); }
};

TEST_CASE("hello BPF program loads through its skeleton and runs", "[bpf][privileged]") {
  FERRY_REQUIRE_ROOT();
  std::unique_ptr<ferry_hello, SkelDeleter> skel(ferry_hello__open());
  REQUIRE(skel != nullptr);
  skel->rodata->ferry_hello_increment = 5;
  REQUIRE(ferry_hello__load(skel.get()) == 0);

  unsigned char packet[64] = {};
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = sizeof(packet),
              .repeat = 3);
  REQUIRE(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.ferry_hello), &opts) == 0);

  __u32 key = 0;
  __u64 runs = 0;
  REQUIRE(bpf_map_lookup_elem(bpf_map__fd(skel->maps.hello_runs), &key, &runs) == 0);
  CHECK(runs == 15);  // three runs, each adding the knob's value
}

}  // namespace
