// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The loader's lifecycle: config validation, the feature probe, map sizes from the config, a
// restart that finds and replaces pinned links, and detachAll leaving nothing in the kernel.
#include <bpf/bpf.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "bpf/config.h"
#include "bpf/features.h"
#include "capture_env.h"
#include "privileged.h"

namespace ferry::bpf::testing {
namespace {

BpfConfig validConfig() {
  BpfConfig c;
  c.pin_dir = "/sys/fs/bpf/ferry-x-node1";
  c.pod_cgroup = "/sys/fs/cgroup/unified/ferry-x/node1";
  return c;
}

TEST_CASE("BpfConfig validation names the bad field", "[bpf][config]") {
  CHECK(validateConfig(validConfig()).ok());
  struct Row {
    const char* field;
    std::function<void(BpfConfig&)> breakIt;
  };
  const Row rows[] = {
      {"pin_dir", [](BpfConfig& c) { c.pin_dir.clear(); }},
      {"pin_dir", [](BpfConfig& c) { c.pin_dir = "/tmp/pins"; }},  // not under bpffs_root
      {"pod_cgroup", [](BpfConfig& c) { c.pod_cgroup = "relative/path"; }},
      {"agent_cgroup", [](BpfConfig& c) { c.agent_cgroup = "cg"; }},
      {"outbound_port", [](BpfConfig& c) { c.outbound_port = 0; }},
      {"max_pods", [](BpfConfig& c) { c.max_pods = 0; }},
      {"max_pods", [](BpfConfig& c) { c.max_pods = 1u << 20; }},
      {"max_cidrs", [](BpfConfig& c) { c.max_cidrs = 0; }},
      {"max_ports", [](BpfConfig& c) { c.max_ports = 0; }},
      {"max_connections", [](BpfConfig& c) { c.max_connections = 1u << 30; }},
      {"max_spliced", [](BpfConfig& c) { c.max_spliced = 1; }},
  };
  for (const Row& row : rows) {
    BpfConfig c = validConfig();
    row.breakIt(c);
    absl::Status s = validateConfig(c);
    INFO(row.field << ": " << s.ToString());
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK(absl::StrContains(s.message(), row.field));
  }
}

TEST_CASE("the feature probe names what is missing", "[bpf][features][privileged]") {
  FERRY_REQUIRE_ROOT();
  FeatureReport real = probeFeatures();
  INFO(real.status().ToString());
  CHECK(real.ok());  // the kernel this runs on (6.18, BTF, cgroup v2) has everything

  FeatureProbeTargets broken;
  broken.btf_path = "/nonexistent/vmlinux";
  broken.cgroup_path = "/tmp";
  FeatureReport report = probeFeatures(broken);
  CHECK(report.missing.size() == 2);
  absl::Status s = report.status();
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StrContains(s.message(), "BTF (/nonexistent/vmlinux"));
  CHECK(absl::StrContains(s.message(), "cgroup v2 (/tmp"));
}

// IDs `bpftool -j <prog|link> show` lists right now.
std::set<uint32_t> bpftoolIds(const std::string& what) {
  std::string out;
  FILE* p = ::popen(("bpftool -j " + what + " show").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) {
    out.append(buf, n);
  }
  REQUIRE(::pclose(p) == 0);
  std::set<uint32_t> ids;
  for (const auto& item : nlohmann::json::parse(out)) {
    ids.insert(item.at("id").get<uint32_t>());
  }
  return ids;
}

uint32_t pinnedMaxEntries(const std::string& path) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  REQUIRE(fd.valid());
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  REQUIRE(bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0);
  return info.max_entries;
}

TEST_CASE("map sizes come from the config and run out with a clear error",
          "[bpf][loader][privileged]") {
  FERRY_REQUIRE_ROOT();
  CaptureEnv env;
  BpfConfig config;
  config.max_pods = 1;
  config.max_connections = 1000;
  config.max_cidrs = 3;
  REQUIRE(env.start(config).ok());
  CHECK(pinnedMaxEntries(env.pin_dir + "/maps/ferry_pods") == 1);
  CHECK(pinnedMaxEntries(env.pin_dir + "/maps/ferry_in_lsn") == 2);
  CHECK(pinnedMaxEntries(env.pin_dir + "/maps/ferry_conns") == 1000);
  CHECK(pinnedMaxEntries(env.pin_dir + "/maps/ferry_cidrs") == 3);
  REQUIRE(env.enroll().ok());
  TestNetns second("10.244.1.12/16", "fd00:244::1:12/64");
  absl::StatusOr<PodHandle> overflow =
      env.capture->enrollPod({second.path(), "10.244.1.12", "", false});
  CHECK(overflow.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(absl::StrContains(overflow.status().message(), "max_pods"));
  absl::Status too_many = env.capture->setMeshCidrs({"10.244.0.0/16", "fd00:244::/48"},
                                                    {"10.96.0.0/16", "fd00:96::/112"});
  CHECK(absl::StrContains(too_many.message(), "max_cidrs"));
  absl::Status bad = env.capture->setMeshCidrs({"10.244.0.1/16"}, {});
  CHECK(absl::StrContains(bad.message(), "bits set past the prefix"));
}

TEST_CASE("a restarted loader finds its pinned links and swaps its programs in",
          "[bpf][loader][restart][privileged]") {
  FERRY_REQUIRE_ROOT();
  CaptureEnv env;
  REQUIRE(env.start().ok());
  REQUIRE(env.capture->setMeshCidrs({"10.244.0.0/16"}, {"10.96.0.0/16"}).ok());
  absl::StatusOr<PodHandle> pod = env.enroll();
  REQUIRE(pod.ok());
  KernelObjectIds before = env.capture->kernelObjectIds();
  REQUIRE(before.links.size() == 5);  // connect4/6, sockops x2, sk_lookup, (no sk_msg: no splice)
  env.capture.reset();                // the agent "crashes": no detach

  // Still attached while no agent runs: capture stays on (fail closed).
  std::set<uint32_t> links = bpftoolIds("link");
  for (uint32_t id : before.links) {
    CHECK(links.count(id) == 1);
  }
  pid_t app =
      spawnInPod(env.pod.path(), env.netns.path(), [] { return connectFromPod("10.96.0.10", 80); });
  CHECK(waitChild(app, 5000) == ECONNREFUSED);  // captured, and nobody listens on 15001

  REQUIRE(env.start().ok());
  KernelObjectIds after = env.capture->kernelObjectIds();
  CHECK(std::set<uint32_t>(after.links.begin(), after.links.end()) ==
        std::set<uint32_t>(before.links.begin(), before.links.end()));  // same links, in place
  std::set<uint32_t> progs = bpftoolIds("prog");
  for (uint32_t id : before.programs) {
    CHECK(progs.count(id) == 0);  // the old programs were swapped out and freed
  }
  for (uint32_t id : after.programs) {
    CHECK(progs.count(id) == 1);
  }
  // The pinned maps came back: the pod is still enrolled under the same index.
  absl::StatusOr<PodHandle> again = env.enroll();
  REQUIRE(again.ok());
  CHECK(again->index == pod->index);
  UniqueFd outbound = listenIn(env.netns.path(), "::", FERRY_PORT_OUTBOUND);
  app =
      spawnInPod(env.pod.path(), env.netns.path(), [] { return connectFromPod("10.96.0.10", 80); });
  UniqueFd conn = acceptWithin(outbound.get(), 5000);
  REQUIRE(conn.valid());
  absl::StatusOr<OriginalDestination> orig = env.capture->originalDestination(conn.get());
  REQUIRE(orig.ok());
  CHECK(orig->toString() == "10.96.0.10:80 from pod " + std::to_string(pod->index));
  CHECK(waitChild(app, 5000) == 0);
}

TEST_CASE("detachAll leaves no Ferry program, link or pin behind", "[bpf][loader][privileged]") {
  FERRY_REQUIRE_ROOT();
  CaptureEnv env;
  BpfConfig config;
  config.splice = true;
  REQUIRE(env.start(config).ok());
  REQUIRE(env.enroll().ok());
  KernelObjectIds ids = env.capture->kernelObjectIds();
  REQUIRE(ids.programs.size() == 5);
  REQUIRE(ids.links.size() == 6);  // connect4/6, sockops x2, sk_msg, sk_lookup
  std::set<uint32_t> progs = bpftoolIds("prog");
  std::set<uint32_t> links = bpftoolIds("link");
  for (uint32_t id : ids.programs) {
    CHECK(progs.count(id) == 1);
  }
  for (uint32_t id : ids.links) {
    CHECK(links.count(id) == 1);
  }

  REQUIRE(env.capture->detachAll().ok());
  env.capture.reset();
  progs = bpftoolIds("prog");
  links = bpftoolIds("link");
  for (uint32_t id : ids.programs) {
    CHECK(progs.count(id) == 0);
  }
  for (uint32_t id : ids.links) {
    CHECK(links.count(id) == 0);
  }
  CHECK(listDir(env.pin_dir + "/links").empty());
  CHECK(listDir(env.pin_dir + "/maps").empty());
  // With nothing attached, the pod's connects are no longer captured.
  pid_t app =
      spawnInPod(env.pod.path(), env.netns.path(), [] { return connectFromPod("10.96.0.10", 80); });
  CHECK(waitChild(app, 5000) == ENETUNREACH);  // the VIP range is unroutable uncaptured
}

TEST_CASE("an unenrolled pod is no longer captured nor steered", "[bpf][loader][privileged]") {
  FERRY_REQUIRE_ROOT();
  CaptureEnv env;
  REQUIRE(env.start().ok());
  REQUIRE(env.capture->setMeshCidrs({"10.244.0.0/16"}, {"10.96.0.0/16"}).ok());
  absl::StatusOr<PodHandle> pod = env.enroll();
  REQUIRE(pod.ok());
  std::string link_pin = env.pin_dir + "/links/sk_lookup_" + std::to_string(pod->netns_cookie);
  CHECK(::access(link_pin.c_str(), F_OK) == 0);
  pid_t app =
      spawnInPod(env.pod.path(), env.netns.path(), [] { return connectFromPod("10.96.0.10", 80); });
  CHECK(waitChild(app, 5000) == ECONNREFUSED);  // captured; no agent listening

  REQUIRE(env.capture->unenrollPod(env.netns.path()).ok());
  CHECK(::access(link_pin.c_str(), F_OK) != 0);
  app =
      spawnInPod(env.pod.path(), env.netns.path(), [] { return connectFromPod("10.96.0.10", 80); });
  CHECK(waitChild(app, 5000) == ENETUNREACH);  // left alone: the VIP is unroutable
  CHECK(env.capture->unenrollPod(env.netns.path()).code() == absl::StatusCode::kNotFound);
  // Its slot is free again.
  absl::StatusOr<PodHandle> again = env.enroll();
  REQUIRE(again.ok());
  CHECK(again->index == pod->index);
}

TEST_CASE("ensureBpffs mounts bpffs where none is mounted", "[bpf][loader][privileged]") {
  FERRY_REQUIRE_ROOT();
  std::string root = "/tmp/" + uniqueName("bpffs");
  REQUIRE(ensureBpffs(root).ok());
  CHECK(shell("stat -f -c %T " + root + " | grep -q bpf_fs") == 0);
  CHECK(ensureBpffs(root).ok());  // already mounted: nothing to do
  CHECK(shell("umount " + root) == 0);
  ::rmdir(root.c_str());
}

}  // namespace
}  // namespace ferry::bpf::testing
