// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Fail closed (issue 17): stopping agents never lets a captured connection out in clear or
// around policy, and a mesh pod without a Service is reached over HBONE only.
#include <signal.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "e2e/manifests.h"
#include "e2e/mesh.h"
#include "e2e/observe.h"
#include "e2e/wire_capture.h"
#include "enroll/client.h"
#include "eventually.h"
#include "harness/process.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

using ferry::testing::eventually;
using namespace std::chrono_literals;

constexpr char kMarker[] = "FERRY-FAILCLOSED-MARKER-3e81d0";

struct Outcome {
  int ok = -1;
  int failed = -1;
};

std::vector<std::string> attemptsArgv(const std::string& ip, int count) {
  return {"/usr/bin/python3",
          meshAppsScript(),
          "attempts",
          "--host=" + ip,
          "--port=8080",
          absl::StrCat("--count=", count),
          absl::StrCat("--text=", kMarker)};
}

Outcome parseOutcome(const std::string& out) {
  Outcome o;
  std::sscanf(out.c_str(), "OK=%d FAILED=%d", &o.ok, &o.failed);
  return o;
}

// `count` fresh connections from `from` to ip:8080, each sending the marker (mesh_apps.py
// attempts): how many were echoed and how many were not.
Outcome attempts(Mesh& m, const harness::Pod& from, const std::string& ip, int count) {
  auto out = m.run(from, attemptsArgv(ip, count));
  return out.ok() ? parseOutcome(*out) : Outcome{};
}

// The same from several pods at once, so that all of them fall inside a short window.
std::vector<Outcome> attemptsAtOnce(Mesh& m, const std::vector<const harness::Pod*>& from,
                                    const std::string& ip, int count) {
  std::vector<std::unique_ptr<harness::Process>> running;
  for (const harness::Pod* pod : from) {
    auto p = m.cluster().spawn(*pod, attemptsArgv(ip, count));
    running.push_back(p.ok() ? *std::move(p) : nullptr);
  }
  std::vector<Outcome> out;
  for (auto& p : running) {
    out.push_back(p && p->wait(absl::Seconds(60)).ok() ? parseOutcome(p->log()) : Outcome{});
  }
  return out;
}

// Entries of one of a node's pinned maps, read with bpftool.
int pinnedEntries(Mesh& m, int node, const std::string& map) {
  auto r = harness::runProcess({},
                               {"/usr/sbin/bpftool", "-j", "map", "dump", "pinned",
                                m.cluster().node(node).bpffs_dir + "/maps/" + map},
                               absl::Seconds(30));
  if (!r.ok() || r->exit_code != 0) {
    return -1;
  }
  auto j = nlohmann::json::parse(r->out, nullptr, false);
  return j.is_array() ? static_cast<int>(j.size()) : -1;
}

int pinnedSkLookupLinks(Mesh& m, int node) {
  int n = 0;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator(m.cluster().node(node).bpffs_dir + "/links", ec)) {
    n += e.path().filename().string().rfind("sk_lookup_", 0) == 0 ? 1 : 0;
  }
  return n;
}

// Only sa-n1p1 may reach n2p1: n1p2 (other node) and n2p2 (same node) are denied.
const std::string kAllowOnlyN1p1 = n2p1Policy("allow-n1p1", "ALLOW", R"(  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sa-n1p1"]
)");

// Retries one attempt until it echoes (bounded: 100 attempts), for the moments when workload
// certificates or state are still on their way to a (re)started agent.
bool echoesEventually(Mesh& m, const harness::Pod& from, const std::string& ip) {
  for (int i = 0; i < 100; ++i) {
    if (attempts(m, from, ip, 1).ok == 1) {
      return true;
    }
  }
  return false;
}

// Under kAllowOnlyN1p1: n1p1 reaches n2p1, n1p2 (other node) and n2p2 (same node) do not.
void checkOnlyN1p1Allowed(Mesh& m) {
  const std::string& ip = m.pod(2, 1).ipv4;
  REQUIRE(echoesEventually(m, m.pod(1, 1), ip));
  CHECK(attempts(m, m.pod(1, 2), ip, 3).ok == 0);
  CHECK(attempts(m, m.pod(2, 2), ip, 3).ok == 0);
}

void checkOnlyHbone(const WireCapture& wire) {
  INFO("capture:\n" << wire.summary());
  CHECK(wire.contains(wire.controlMarker()));  // the search below can find a marker
  CHECK_FALSE(wire.contains(kMarker));
  auto clear = wire.frames("tcp.len > 0 && tcp.port != 15008");
  REQUIRE_OK(clear);
  CHECK(clear->empty());
  // A retransmitted 15008 segment is dissected as TCP, not TLS: it is not cleartext either.
  auto outside_tls = wire.frames("tcp.len > 0 && !tls && !tcp.analysis.retransmission");
  REQUIRE_OK(outside_tls);
  CHECK(outside_tls->empty());
}

TEST_CASE("SIGTERM during traffic fails closed: nothing in clear, denied pairs stay denied",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  MeshOptions options;
  options.controller = true;
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  const harness::Pod& server = m.pod(2, 1);
  absl::Status app = m.startApp(server, {"echo-server", "--port=8080"}, 8080);
  REQUIRE_OK(app);
  // Only node2's view changes (the policy selects n2p1): wait for that node alone.
  auto applied = m.applyManifestOn("policy-allow-n1p1.yaml", kAllowOnlyN1p1, {2});
  REQUIRE_OK(applied);
  checkOnlyN1p1Allowed(m);

  auto wire = WireCapture::start(m, "sigterm");
  REQUIRE_OK(wire);
  // A connection held open through both agents keeps them draining (their grace is 5 s).
  const std::string release = m.cluster().scratchDir() + "/release-held";
  auto held =
      m.cluster().spawn(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "hold",
                                      "--host=" + server.ipv4, "--port=8080", "--text=" + release});
  REQUIRE_OK(held);
  const bool is_held = eventually([&] { return (*held)->log().find("HELD") != std::string::npos; },
                                  10s, "the held connection to report HELD");
  INFO((*held)->log());
  REQUIRE(is_held);

  m.agent(1).signal(SIGTERM);
  m.agent(2).signal(SIGTERM);
  REQUIRE(m.waitAgentLog(1, "draining"));
  REQUIRE(m.waitAgentLog(2, "draining"));
  // While the agents drain: a draining agent may still serve (and judge) a connection, or
  // refuse it; never may a denied pair get through.
  std::vector<Outcome> during =
      attemptsAtOnce(m, {&m.pod(1, 1), &m.pod(1, 2), &m.pod(2, 2)}, server.ipv4, 5);
  const Outcome& during_allowed = during[0];
  const Outcome& during_cross = during[1];
  const Outcome& during_local = during[2];
  const bool still_draining = m.agent(1).running() && m.agent(2).running();
  INFO("during the drain: allowed pair " << during_allowed.ok << " echoed, "
                                         << during_allowed.failed << " refused");
  CHECK(still_draining);
  CHECK(during_cross.ok == 0);
  CHECK(during_cross.failed == 5);
  CHECK(during_local.ok == 0);
  CHECK(during_local.failed == 5);
  for (int n : {1, 2}) {
    auto rc = m.agent(n).wait(absl::Seconds(20));
    REQUIRE_OK(rc);
    CHECK(*rc == 0);
  }

  // No agent: the pinned capture still holds every pod (2 per node), so all are refused.
  for (int n : {1, 2}) {
    INFO("node" << n);
    CHECK(pinnedEntries(m, n, "ferry_pods") == 2);
    CHECK(pinnedEntries(m, n, "ferry_pod_addrs") == 4);  // IPv4 + IPv6 per pod
    CHECK(pinnedSkLookupLinks(m, n) == 2);
  }
  for (const harness::Pod* from : {&m.pod(1, 1), &m.pod(1, 2), &m.pod(2, 2)}) {
    INFO("from " << from->name << " with no agent running");
    Outcome after = attempts(m, *from, server.ipv4, 5);
    CHECK(after.ok == 0);
    CHECK(after.failed == 5);
    Outcome after_v6 = attempts(m, *from, server.ipv6, 2);
    CHECK(after_v6.ok == 0);
  }
  absl::Status stopped = (*wire)->stop(m.pod(1, 1), server.ipv4);
  REQUIRE_OK(stopped);
  checkOnlyHbone(**wire);

  // New agents re-attach to the pinned state and replay their journals: traffic works again
  // and the policy still holds.
  for (int n : {1, 2}) {
    absl::Status started = m.startAgent(n);
    REQUIRE_OK(started);
    CHECK_THAT(m.agentLog(n), Catch::Contains("journal: restored 2 pods"));
  }
  checkOnlyN1p1Allowed(m);
}

TEST_CASE("a mesh pod with no Service in front of it is reached over HBONE only",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  const bool controller = GENERATE(true, false);
  INFO((controller ? "ferry-controller feeds the agents" : "agents read the manifests folder"));
  MeshOptions options;
  options.controller = controller;
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  const harness::Pod& lone = m.pod(2, 2);  // the only Service, web, selects n2p1
  absl::Status app = m.startApp(lone, {"echo-server", "--port=8080"}, 8080);
  REQUIRE_OK(app);
  auto wire = WireCapture::start(m, controller ? "no-service-controller" : "no-service");
  REQUIRE_OK(wire);
  const int64_t hbone_before = m.stat(1, "outbound_hbone");
  const int64_t passthrough_before = m.stat(1, "outbound_passthrough");

  REQUIRE(echoesEventually(m, m.pod(1, 1), lone.ipv4));
  CHECK(attempts(m, m.pod(1, 1), lone.ipv4, 3).ok == 3);
  CHECK(attempts(m, m.pod(1, 1), lone.ipv6, 3).ok == 3);
  CHECK(m.stat(1, "outbound_hbone") - hbone_before >= 7);
  CHECK(m.stat(1, "outbound_passthrough") == passthrough_before);

  // An address in the pod ranges that no pod has: refused, counted, not sent.
  const std::string nobody = "10.244.2.250";
  CHECK(attempts(m, m.pod(1, 1), nobody, 2).ok == 0);
  CHECK(m.stat(1, "outbound_unknown_destination") == 2);
  std::string page =
      scrapeUntil(m.metricsPort(1), "ferry_errors_total", {{"reason", "unknown_destination"}}, 2);
  CHECK_THAT(page, Catch::Contains("ferry_errors_total{reason=\"unknown_destination\"} 2"));
  CHECK_THAT(m.agentLog(1), Catch::Contains("no pod with this address"));

  absl::Status stopped = (*wire)->stop(m.pod(1, 1), lone.ipv4);
  REQUIRE_OK(stopped);
  checkOnlyHbone(**wire);
  auto tls = (*wire)->frames("tls.app_data");
  REQUIRE_OK(tls);
  CHECK_FALSE(tls->empty());
}

}  // namespace
}  // namespace ferry::e2e

namespace ferry::e2e {
namespace {

// n2p2 as a pod of namespace "outside" (no Namespace object marks it for the mesh), behind the
// Service outside/ext on 10.96.0.40:8080.
std::string outsidePodAndService(const harness::Pod& pod) {
  return absl::StrCat(
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ", pod.name,
      "\n  namespace: outside\n  uid: ", Mesh::uidOf(pod), "\n  labels:\n    app: ext\n",
      "spec:\n  nodeName: node", pod.node,
      "\n  serviceAccountName: default\nstatus:\n  podIP: ", pod.ipv4,
      "\n  podIPs:\n  - ip: ", pod.ipv4, "\n  - ip: ", pod.ipv6,
      "\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: ext\n  namespace: outside\n"
      "spec:\n  clusterIP: 10.96.0.40\n  selector:\n    app: ext\n  ports:\n  - name: tcp\n"
      "    port: 8080\n");
}

TEST_CASE("a ClusterIP no Service has is refused, a Service outside the mesh still answers",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  MeshOptions options;
  options.controller = true;
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  const harness::Pod& ext = m.pod(2, 2);
  absl::Status del = enroll::delPod(m.enrollSocket(2), Mesh::uidOf(ext));
  REQUIRE_OK(del);
  absl::Status moved = m.applyManifest("pod-" + ext.name + ".yaml", outsidePodAndService(ext));
  REQUIRE_OK(moved);
  absl::Status app = m.startApp(ext, {"echo-server", "--port=8080"}, 8080);
  REQUIRE_OK(app);

  // outside/ext reaches n1p1's agent from the controller although its namespace is not in the
  // mesh; its pod is not in the mesh either, so the connection passes through (as ztunnel does).
  const int64_t passthrough_before = m.stat(1, "outbound_passthrough");
  CHECK(attempts(m, m.pod(1, 1), "10.96.0.40", 3).ok == 3);
  CHECK(m.stat(1, "outbound_passthrough") - passthrough_before == 3);
  CHECK(m.stat(1, "outbound_unknown_destination") == 0);

  // A ClusterIP in the Service ranges that no Service has (kube-proxy would take it on in clear):
  // refused, counted, logged.
  CHECK(attempts(m, m.pod(1, 1), "10.96.0.250", 2).ok == 0);
  CHECK(attempts(m, m.pod(1, 1), "fd00:96::fa", 2).ok == 0);
  CHECK(m.stat(1, "outbound_unknown_destination") == 4);
  CHECK(m.stat(1, "outbound_passthrough") - passthrough_before == 3);
  CHECK_THAT(m.agentLog(1), Catch::Contains("no Service with this address"));
}

}  // namespace
}  // namespace ferry::e2e
