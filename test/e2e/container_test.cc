// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Ferry's images built here (packaging/build-images.sh: a debootstrap base, buildah, no registry)
// and the agent image run under podman with exactly what the chart's DaemonSet gives the agent
// container: host network, root with only BPF, SYS_ADMIN and NET_ADMIN (socketMark is on by
// default), the runtime's default seccomp profile, a read-only root, the bpffs, cgroup, netns
// and /run/ferry host paths, the token and CA root read-only, and no /tmp. Mesh traffic
// then crosses it: encrypted on the wire, one connection allowed and one denied by policy.
#include <linux/capability.h>
#include <sys/resource.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "e2e/manifests.h"
#include "e2e/mesh.h"
#include "e2e/wire_capture.h"
#include "harness/process.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

namespace fs = std::filesystem;

constexpr char kTag[] = "e2e";
constexpr char kAgentImage[] = "localhost/ferry-agent:e2e";
// The chart's default agent.socketMark (charts/ferry/values.yaml); it adds NET_ADMIN.
constexpr char kSocketMark[] = "70";

absl::StatusOr<harness::ProcessResult> run(const std::vector<std::string>& argv,
                                           absl::Duration timeout = absl::Seconds(120)) {
  return harness::runProcess({}, argv, timeout);
}

// packaging/build-images.sh on this build's binaries: the base comes from its cache after the
// first run, unchanged layers from buildah's. Prints the summary for the test log.
void buildImages() {
  auto r = run({"bash", FERRY_SOURCE_DIR "/packaging/build-images.sh", "--from-build",
                FERRY_BUILD_DIR, "--tag", kTag},
               absl::Minutes(15));
  REQUIRE_OK(r);
  INFO(r->out << r->err);
  REQUIRE(r->exit_code == 0);
  std::cout << r->out.substr(r->out.find("build-images: summary")) << std::flush;
}

// podman run's options that every container here needs (packaging/build-images.sh says why).
std::vector<std::string> podmanRun() {
  rlimit files{}, procs{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  ::getrlimit(RLIMIT_NPROC, &procs);
  const rlim_t nproc = std::min<rlim_t>(procs.rlim_max, 32768);
  return {"podman", "run", "--runtime=/usr/sbin/runc",
          absl::StrCat("--ulimit=nofile=", files.rlim_max, ":", files.rlim_max),
          absl::StrCat("--ulimit=nproc=", nproc, ":", nproc)};
}

std::string flagValue(const std::vector<std::string>& argv, const std::string& name) {
  for (const std::string& a : argv) {
    if (absl::StartsWith(a, "--" + name + "=")) {
      return a.substr(name.size() + 3);
    }
  }
  return "";
}

// The harness's agent command line turned into the agent image under podman with the chart's
// DaemonSet settings (charts/ferry/templates/agent-daemonset.yaml, container "agent"). Paths
// the chart fixes (token, CA root, enrollment socket, state journal) are the chart's inside the
// container; the host side of /run/ferry is a folder per node, its socket linked where the
// harness enrolls pods.
std::vector<std::string> agentInPodman(const std::string& container, const harness::Node& node,
                                       std::vector<std::string> argv) {
  const std::string token = flagValue(argv, "bootstrap-token-file");
  const std::string ca_root = flagValue(argv, "controller-ca");
  const std::string socket = flagValue(argv, "enroll-socket");
  const std::string run_ferry = fs::path(socket).parent_path() / (node.name + "-run-ferry");
  fs::create_directories(run_ferry);
  fs::remove(socket);
  fs::create_symlink(run_ferry + "/agent.sock", socket);
  std::vector<std::string> out = podmanRun();
  out.insert(out.end(), {
                            "--rm",
                            "--name=" + container,
                            "--network=host",  // hostNetwork: true
                            "--user=0",        // runAsUser: 0
                            "--read-only",     // readOnlyRootFilesystem: true
                            "--cap-drop=ALL",  // capabilities.drop: [ALL]
                            "--cap-add=BPF",   // capabilities.add
                            "--cap-add=SYS_ADMIN",
                            "--cap-add=NET_ADMIN",  // with agent.socketMark
                            // seccompProfile RuntimeDefault: podman's default profile; and
                            // allowPrivilegeEscalation: true, so no no-new-privileges.
                            "--volume=/sys/fs/bpf:/sys/fs/bpf:rslave",
                            // hostPaths.cgroup: the node's cgroup subtree stands for the
                            // node's cgroup v2 root, as --cgroup=/sys/fs/cgroup says.
                            "--volume=" + node.cgroup_path + ":/sys/fs/cgroup:ro",
                            "--volume=/run/netns:/var/run/netns:ro,rslave",
                            "--volume=" + run_ferry + ":/run/ferry",
                            "--volume=" + token + ":/var/run/secrets/ferry/token:ro",
                            "--volume=" + ca_root + ":/etc/ferry/ca-root/root-cert.pem:ro",
                            "--entrypoint=ferry-agent",  // command: ["ferry-agent"]
                            kAgentImage,
                        });
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (absl::StartsWith(a, "--bootstrap-token-file=")) {
      out.push_back("--bootstrap-token-file=/var/run/secrets/ferry/token");
    } else if (absl::StartsWith(a, "--controller-ca=")) {
      out.push_back("--controller-ca=/etc/ferry/ca-root/root-cert.pem");
    } else if (absl::StartsWith(a, "--cgroup=")) {
      out.push_back("--cgroup=/sys/fs/cgroup");
    } else if (absl::StartsWith(a, "--enroll-socket=")) {
      out.push_back("--enroll-socket=/run/ferry/agent.sock");
    } else if (!absl::StartsWith(a, "--state-file=")) {  // the chart keeps the default
      out.push_back(a);
    }
  }
  out.push_back(absl::StrCat("--socket-mark=", kSocketMark));
  return out;
}

// Removes the test's containers however the test ends.
struct Containers {
  std::vector<std::string> names;
  ~Containers() {
    for (const std::string& n : names) {
      (void)run({"podman", "rm", "--force", "--ignore", "--time=5", n});
    }
  }
};

TEST_CASE("images build from a debootstrap base: non-root where the chart says, --version runs",
          "[privileged][e2e][image]") {
  FERRY_REQUIRE_ROOT();
  buildImages();
  // Independently of the script's own checks: who each image runs as, and the version.
  auto id = [](const std::string& image) {
    std::vector<std::string> argv = podmanRun();
    argv.insert(argv.end(), {"--rm", "--network=none", "--read-only", "--entrypoint=id",
                             "localhost/" + image + ":" + kTag, "-u"});
    auto r = run(argv);
    REQUIRE_OK(r);
    INFO(r->err);
    REQUIRE(r->exit_code == 0);
    return std::string(absl::StripAsciiWhitespace(r->out));
  };
  CHECK(id("ferry-agent") == "0");
  CHECK(id("ferry-cni") == "0");
  CHECK(id("ferry-controller") == "65532");
  CHECK(id("ferryctl") == "65532");
  for (const std::string image : {"ferry-agent", "ferry-controller", "ferry-cni", "ferryctl"}) {
    auto size = run({"podman", "image", "inspect", "--format={{.Size}}",
                     absl::StrCat("localhost/", image, ":", kTag)});
    REQUIRE_OK(size);
    int64_t bytes = 0;
    REQUIRE(absl::SimpleAtoi(absl::StripAsciiWhitespace(size->out), &bytes));
    INFO(image << ": " << bytes << " bytes");
    // Debian 12 minbase (~78 MB) plus runtime libraries: a -dev package or a compiler would
    // push an image far past this.
    CHECK(bytes < 160'000'000);
  }
}

// The chart's two containers from the ferry-cni image: the check-host init container and the
// installer (root, every capability dropped, no privilege escalation, read-only root).
std::vector<std::string> cniInPodman(const std::vector<std::string>& mounts_and_env,
                                     const std::string& command) {
  std::vector<std::string> argv = podmanRun();
  argv.insert(argv.end(), {"--rm", "--network=host", "--user=0", "--read-only", "--cap-drop=ALL",
                           "--security-opt=no-new-privileges"});
  argv.insert(argv.end(), mounts_and_env.begin(), mounts_and_env.end());
  argv.insert(argv.end(), {"--entrypoint=ferry-cni-install",
                           "localhost/ferry-cni:" + std::string(kTag), command});
  return argv;
}

TEST_CASE("the CNI image checks the host and chains ferry-cni as the chart runs it",
          "[privileged][e2e][image]") {
  FERRY_REQUIRE_ROOT();
  buildImages();
  // This machine has cgroup v2 at /sys/fs/cgroup/unified (hybrid): the chart's documented
  // agent.hostPaths.cgroup for such nodes, mounted where the chart mounts it.
  auto check = run(cniInPodman(
      {"--volume=/sys/fs/bpf:/sys/fs/bpf:ro", "--volume=/sys/fs/cgroup/unified:/sys/fs/cgroup:ro",
       "--env=FERRY_BPFFS=/sys/fs/bpf", "--env=FERRY_CGROUP=/sys/fs/cgroup"},
      "check-host"));
  REQUIRE_OK(check);
  INFO(check->out << check->err);
  CHECK(check->exit_code == 0);
  CHECK_THAT(check->err, Catch::Contains("host ok"));

  const std::string root = fs::temp_directory_path() / absl::StrCat("ferry-cni-image-", getpid());
  fs::remove_all(root);
  fs::create_directories(root + "/bin");
  fs::create_directories(root + "/net.d");
  std::ofstream(root + "/net.d/10-bridge.conflist")
      << R"({"cniVersion": "1.0.0", "name": "pods", "plugins": [{"type": "bridge"}]})";
  auto install = run(cniInPodman(
      {"--volume=" + root + "/bin:/host/opt/cni/bin",
       "--volume=" + root + "/net.d:/host/etc/cni/net.d", "--volume=/sys/fs/bpf:/sys/fs/bpf:rslave",
       "--tmpfs=/tmp:rw,size=16m", "--env=FERRY_CNI_BIN_DIR=/host/opt/cni/bin",
       "--env=FERRY_CNI_CONF_DIR=/host/etc/cni/net.d",
       "--env=FERRY_CNI_SOCKET=/run/ferry/agent.sock"},
      "install"));
  REQUIRE_OK(install);
  INFO(install->out << install->err);
  CHECK(install->exit_code == 0);
  std::ifstream conf(root + "/net.d/10-bridge.conflist");
  const std::string chained((std::istreambuf_iterator<char>(conf)), {});
  CHECK_THAT(chained, Catch::Contains(R"("type": "ferry-cni")"));
  // The plugin the image put on the "host" runs there, as the runtime would run it.
  auto version = harness::runProcess({}, {"env", "CNI_COMMAND=VERSION", root + "/bin/ferry-cni"},
                                     absl::Seconds(10));
  REQUIRE_OK(version);
  CHECK(version->exit_code == 0);
  CHECK_THAT(version->out, Catch::Contains("supportedVersions"));
  fs::remove_all(root);
}

TEST_CASE("the agent image with the chart's privileges carries encrypted, policed mesh traffic",
          "[privileged][e2e][image]") {
  FERRY_REQUIRE_ROOT();
  buildImages();
  Containers containers;
  MeshOptions options;
  options.agent_command = [&](const harness::Node& node, std::vector<std::string> argv) {
    const std::string name =
        absl::StrCat("ferry-e2e-", getpid(), "-", node.name, "-", containers.names.size());
    containers.names.push_back(name);
    return agentInPodman(name, node, std::move(argv));
  };
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE(containers.names.size() == 2);

  // The agents really are those containers, with exactly the chart's capabilities.
  const uint64_t want = (1ull << CAP_BPF) | (1ull << CAP_SYS_ADMIN) | (1ull << CAP_NET_ADMIN);
  for (const std::string& name : containers.names) {
    auto status = run({"podman", "exec", name, "grep", "^CapEff:", "/proc/1/status"});
    REQUIRE_OK(status);
    INFO(name << ": " << status->out << status->err);
    REQUIRE(status->exit_code == 0);
    const uint64_t caps = std::stoull(status->out.substr(7), nullptr, 16);
    CHECK(caps == want);
    auto comm = run({"podman", "exec", name, "cat", "/proc/1/comm"});
    REQUIRE_OK(comm);
    CHECK(absl::StripAsciiWhitespace(comm->out) == "ferry-agent");
  }

  absl::Status app = m.startApp(m.pod(2, 1), {"echo-server", "--port=8080"}, 8080);
  REQUIRE_OK(app);
  absl::Status applied = m.applyManifest("policy-allow.yaml", kAllowOnlyN1p2);
  REQUIRE_OK(applied);
  auto wire = WireCapture::start(m, "bridge");
  REQUIRE_OK(wire);
  const std::string marker = "FERRY-CONTAINER-MARKER-51d0";
  auto send = [&](const harness::Pod& from) {
    return m.run(from, {"/usr/bin/python3", meshAppsScript(), "send", "--host=" + m.pod(2, 1).ipv4,
                        "--port=8080", "--text=" + marker});
  };
  auto allowed = send(m.pod(1, 2));
  REQUIRE_OK(allowed);
  CHECK_THAT(*allowed, Catch::Contains("OK"));
  auto denied = send(m.pod(1, 1));
  CHECK_FALSE((denied.ok() && absl::StrContains(*denied, "OK")));
  absl::Status stopped = (*wire)->stop(m.pod(1, 1), m.pod(2, 1).ipv4);
  REQUIRE_OK(stopped);
  std::cout << "allowed n1p2 -> n2p1: " << *allowed << "denied n1p1 -> n2p1: "
            << (denied.ok() ? *denied : std::string(denied.status().message())) << "\n";

  INFO("capture:\n" << (*wire)->summary());
  CHECK((*wire)->contains((*wire)->controlMarker()));
  CHECK_FALSE((*wire)->contains(marker));
  auto app_data = (*wire)->frames("tls.app_data");
  REQUIRE_OK(app_data);
  CHECK_FALSE(app_data->empty());
  auto plain = (*wire)->frames("tcp.len > 0 && !tls && !tcp.analysis.retransmission");
  REQUIRE_OK(plain);
  CHECK(plain->empty());
  CHECK(m.stat(2, "policy_denied") == 1);
  CHECK(m.stat(1, "outbound_hbone") == 2);
  CHECK(m.stat(2, "tls_handshakes_server") >= 1);
  std::cout << "node2 agent (container " << containers.names[1]
            << "): policy_denied=" << m.stat(2, "policy_denied")
            << " inbound_hbone_streams=" << m.stat(2, "inbound_hbone_streams")
            << " tls_handshakes_server=" << m.stat(2, "tls_handshakes_server")
            << "; TLS application-data frames on the bridge: "
            << std::count(app_data->begin(), app_data->end(), '\n') << "\n";
}

}  // namespace
}  // namespace ferry::e2e
