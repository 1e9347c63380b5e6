// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Agent upgrades in place (issue 18): SIGTERM to a node's agent and, at once, a new agent; the
// new one takes the listeners over (agent/drain/handover.h) and the old one drains in place.
#include <signal.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "e2e/mesh.h"
#include "e2e/observe.h"
#include "eventually.h"
#include "harness/process.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

using ferry::testing::eventually;
using namespace std::chrono_literals;

constexpr char kMarker[] = "FERRY-UPGRADE-PROBE";

// Waits (bounded: 30 s) until `text` is in a process's output; false at once if it exits without.
bool waitOutput(harness::Process& p, const std::string& text) {
  auto printed = [&] { return p.log().find(text) != std::string::npos; };
  return eventually([&] { return printed() || !p.running(); }, 30s,
                    "'" + text + "' (or an exit)") &&
         printed();
}

std::unique_ptr<harness::Process> spawnApp(Mesh& m, const harness::Pod& pod,
                                           const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/python3", meshAppsScript()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = m.cluster().spawn(pod, argv);
  REQUIRE_OK(p);
  return *std::move(p);
}

void touch(const std::string& path) {
  std::ofstream(path) << "go\n";
}

int counted(const std::string& out, const char* key) {
  size_t at = out.find(key);
  return at == std::string::npos ? -1 : std::atoi(out.c_str() + at + std::strlen(key));
}

// A mesh with an echo server on n2p1:8080 and `count` long-lived streams to it from n1p1
// (mesh_apps.py "streams": each sends its own bytes in rounds and checks the echo), streaming;
// touching `release` ends them.
struct Streaming {
  std::unique_ptr<Mesh> mesh;
  std::unique_ptr<harness::Process> streams;
  std::string release;
};

Streaming startStreaming(const MeshOptions& options, int count) {
  Streaming out;
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  out.mesh = *std::move(mesh);
  Mesh& m = *out.mesh;
  const harness::Pod& server = m.pod(2, 1);
  REQUIRE_OK(m.startApp(server, {"echo-server", "--port=8080"}, 8080));
  out.release = m.cluster().scratchDir() + "/release";
  out.streams = spawnApp(m, m.pod(1, 1),
                         {"streams", "--host=" + server.ipv4, "--port=8080",
                          absl::StrCat("--count=", count), "--text=" + out.release});
  REQUIRE(waitOutput(*out.streams, "STREAMING"));
  REQUIRE_THAT(out.streams->log(), !Catch::Contains("NOT STREAMING"));
  return out;
}

// Ends the "streams" app's streams by touching `release`; each of `count` must have echoed
// every byte.
void releaseStreams(harness::Process& streams, const std::string& release, int count) {
  touch(release);
  auto done = streams.wait(absl::Seconds(60));
  REQUIRE_OK(done);
  INFO(streams.log());
  CHECK_THAT(streams.log(), Catch::Contains(absl::StrCat("OK=", count, " BAD=0")));
  CHECK(counted(streams.log(), "BYTES=") > 0);
}

// A mesh with an echo server on pod (node, index):8080 that n1p1 has sent to once.
std::unique_ptr<Mesh> warmEchoMesh(int node, int index) {
  auto mesh = Mesh::start();
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  const harness::Pod& server = m.pod(node, index);
  REQUIRE_OK(m.startApp(server, {"echo-server", "--port=8080"}, 8080));
  auto warm = m.run(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "send",
                                  "--host=" + server.ipv4, "--port=8080", "--text=warm"});
  REQUIRE_OK(warm);
  return *std::move(mesh);
}

}  // namespace

TEST_CASE("agent upgrade in place: a new connection every 10 ms is never refused",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  // SIGTERM first, then the new agent (maxUnavailable), or the new agent beside the running one
  // and SIGTERM once it is ready (maxSurge, the chart's way).
  const bool surge = GENERATE(false, true);
  INFO((surge ? "surge: new agent first" : "SIGTERM first"));
  std::unique_ptr<Mesh> mesh = warmEchoMesh(2, 1);
  Mesh& m = *mesh;
  const harness::Pod& server = m.pod(2, 1);

  // Cross-node (n1p1 -> n2p1: source and destination agent) and same-node (n2p2 -> n2p1).
  const std::string stop = m.cluster().scratchDir() + "/stop-probes";
  std::vector<std::unique_ptr<harness::Process>> probers;
  for (const harness::Pod* from : {&m.pod(1, 1), &m.pod(2, 2)}) {
    probers.push_back(
        spawnApp(m, *from,
                 {"probe-every", "--host=" + server.ipv4, "--port=8080", "--interval=0.01",
                  "--count=6000", "--text=" + std::string(kMarker), "--name=" + stop}));
  }
  for (auto& p : probers) {
    REQUIRE(waitOutput(*p, "STARTED"));
  }
  // What the agents said of failed or reset streams, shown when a probe failed.
  std::string agent_notes;
  auto note = [&](const std::string& who, const std::string& log) {
    for (absl::string_view line : absl::StrSplit(log, '\n')) {
      if (absl::StrContains(line, "reset") || absl::StrContains(line, "fail") ||
          absl::StrContains(line, "refused")) {
        absl::StrAppend(&agent_notes, who, ": ", line, "\n");
      }
    }
  };
  // Three rounds, each upgrading the source's agent, then the destination's.
  for (int round = 0; round < 6; ++round) {
    const int node = 1 + round % 2;
    INFO("upgrade " << round + 1 << ", node" << node);
    auto up = m.upgradeAgent(node, surge);
    REQUIRE_OK(up);
    if (surge) {
      // Handed over, it waits for its SIGTERM (exiting first would have the kubelet restart it).
      CHECK(up->old->running());
      up->old->signal(SIGTERM);
    }
    auto rc = up->old->wait(absl::Seconds(30));
    REQUIRE_OK(rc);
    CHECK(*rc == 0);
    CHECK_THAT(up->old->log(), Catch::Contains("serves the node now"));
    note(absl::StrCat("round ", round + 1, " node", node, " old agent"), up->old->log());
    auto stats = m.stats(node);
    REQUIRE_OK(stats);
    std::printf(
        "%s node%d: SIGTERM (or start) to the new agent accepting: %.0f ms; new "
        "agent's own start to accepting: %lld ms\n",
        surge ? "surge" : "sigterm-first", node, absl::ToDoubleMilliseconds(up->ready_after),
        static_cast<long long>((*stats)["takeover_ready_ms"]));
    CHECK((*stats)["takeover_ready_ms"] >= 0);
    CHECK_THAT(m.agentLog(node), Catch::Contains("handover: took"));
  }
  // The new agents serve (the probes also went on through both restarts).
  auto after =
      m.run(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "attempts", "--host=" + server.ipv4,
                          "--port=8080", "--count=5", "--text=after"});
  REQUIRE_OK(after);
  CHECK_THAT(*after, Catch::Contains("OK=5 FAILED=0"));
  touch(stop);
  note("node1 agent", m.agentLog(1));
  note("node2 agent", m.agentLog(2));
  for (auto& p : probers) {
    auto rc = p->wait(absl::Seconds(60));
    REQUIRE_OK(rc);
    std::string out = p->log();
    INFO(out);
    INFO(agent_notes);
    std::printf("prober: %s", out.c_str());
    CHECK(counted(out, "FAILED=") == 0);
    // About one a 10 ms through six hand-overs (each ~0.2 s): the windows were probed.
    CHECK(counted(out, "OK=") > 60);
  }
}

TEST_CASE("agent upgrade in place: streams that end within the grace are untouched",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  MeshOptions options;
  // The drain itself: without stream resumption (an L7 connection, or a peer agent of an older
  // release) an established stream stays on the old agent until it ends.
  options.extra_agent_flags = {"--drain-grace=40s", "--stream-resume=off"};
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  const harness::Pod& server = m.pod(2, 1);
  REQUIRE_OK(m.startApp(server, {"echo-server", "--port=8080"}, 8080));

  // The source agent (node1), then the destination agent (node2).
  for (int node : {1, 2}) {
    INFO("upgrading node" << node);
    const std::string release = absl::StrCat(m.cluster().scratchDir(), "/release-", node);
    auto streams = spawnApp(
        m, m.pod(1, 1),
        {"streams", "--host=" + server.ipv4, "--port=8080", "--count=10", "--text=" + release});
    REQUIRE(waitOutput(*streams, "STREAMING"));
    REQUIRE_THAT(streams->log(), !Catch::Contains("NOT STREAMING"));
    auto up = m.upgradeAgent(node);
    REQUIRE_OK(up);
    const pid_t old_pid = up->old->pid();
    REQUIRE(up->old->running());  // it drains the streams
    // The new agent says who drains: metrics and the readiness answer.
    std::string page =
        scrapeUntil(m.metricsPort(node), "ferry_agent_predecessor_draining_connections",
                    {{"pid", std::to_string(old_pid)}}, 1);
    CHECK_THAT(page, Catch::Contains(absl::StrCat(
                         "ferry_agent_predecessor_draining_connections{pid=\"", old_pid, "\"}")));
    auto ready = httpGet(m.readinessPort(node), "/healthz/ready");
    REQUIRE_OK(ready);
    CHECK_THAT(*ready,
               Catch::Contains(absl::StrCat("previous agent (pid ", old_pid, ") draining")));
    // New connections meanwhile go to the new agent.
    auto during =
        m.run(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "attempts",
                            "--host=" + server.ipv4, "--port=8080", "--count=3", "--text=during"});
    REQUIRE_OK(during);
    CHECK_THAT(*during, Catch::Contains("OK=3 FAILED=0"));
    REQUIRE(up->old->running());

    absl::Time released = absl::Now();
    releaseStreams(*streams, release, 10);
    // The old agent leaves once its connections ended, well before the 40 s grace.
    auto rc = up->old->wait(absl::Seconds(20));
    REQUIRE_OK(rc);
    CHECK(*rc == 0);
    absl::Duration exit_after = absl::Now() - released;
    std::printf(
        "node%d: SIGTERM to the new agent accepting %.0f ms; old agent exited %.0f ms after the "
        "streams "
        "were released (grace 40 s)\n",
        node, absl::ToDoubleMilliseconds(up->ready_after), absl::ToDoubleMilliseconds(exit_after));
    CHECK(exit_after < absl::Seconds(20));
    INFO(up->old->log());
    CHECK_THAT(up->old->log(), Catch::Contains("drain: handed over, 0 connections left"));
  }
}

TEST_CASE("same-node direct connections are not the agent's: they stream on through its upgrade",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  // The warm-up, the pair's first connection, goes through the agent, which admits the pair.
  std::unique_ptr<Mesh> mesh = warmEchoMesh(1, 2);
  Mesh& m = *mesh;
  const harness::Pod& server = m.pod(1, 2);
  const double direct_before = bpfEvent(m.metricsPort(1), "connect_direct");
  const std::string release = m.cluster().scratchDir() + "/release-direct";
  auto streams = spawnApp(
      m, m.pod(1, 1),
      {"streams", "--host=" + server.ipv4, "--port=8080", "--count=10", "--text=" + release});
  REQUIRE(waitOutput(*streams, "STREAMING"));
  CHECK(bpfEvent(m.metricsPort(1), "connect_direct") - direct_before == 10);
  auto up = m.upgradeAgent(1);
  REQUIRE_OK(up);
  // The old agent carries none of them: it leaves at once, and the streams go on.
  auto rc = up->old->wait(absl::Seconds(20));
  REQUIRE_OK(rc);
  CHECK(*rc == 0);
  releaseStreams(*streams, release, 10);
}

TEST_CASE("a second signal ends the drain at once", "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  MeshOptions options;
  options.extra_agent_flags = {"--drain-grace=60s"};
  Streaming run = startStreaming(options, 2);
  Mesh& m = *run.mesh;

  // SIGTERM with streams open and no successor: the agent drains for its 60 s grace...
  m.agent(1).signal(SIGTERM);
  REQUIRE(m.waitAgentLog(1, "draining (grace 60000 ms)"));
  REQUIRE(m.agent(1).running());
  // ...until a second signal ends the drain: it exits cleanly, long before the grace.
  m.agent(1).signal(SIGINT);
  auto rc = m.agent(1).wait(absl::Seconds(30));
  REQUIRE_OK(rc);
  CHECK(*rc == 0);
  INFO(m.agentLog(1));
  CHECK_THAT(m.agentLog(1), Catch::Contains("signal 2 again: ending the drain now"));
  CHECK_THAT(m.agentLog(1), Catch::Contains("drain: no successor took over"));
  touch(run.release);
}

namespace {

int64_t statOf(Mesh& m, int node, const char* name) {
  auto stats = m.stats(node);
  return stats.ok() ? (*stats)[name] : -1;
}

// Streams an old agent's log says it handed over, over all its batches.
int handedStreams(const std::string& log) {
  int total = 0;
  for (size_t at = log.find("handover: handed "); at != std::string::npos;
       at = log.find("handover: handed ", at + 1)) {
    total += std::atoi(log.c_str() + at + std::strlen("handover: handed "));
  }
  return total;
}

// Waits (bounded) until a node's agent has counted `want` of `name`.
bool statReaches(Mesh& m, int node, const char* name, int64_t want) {
  return eventually([&] { return statOf(m, node, name) >= want; }, 30s,
                    absl::StrCat("node", node, " ", name, " >= ", want));
}

}  // namespace

TEST_CASE("agent upgrades hand established streams over: 50 streams survive every restart",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  constexpr int kStreams = 50;
  MeshOptions options;
  // A 2 s grace: without the hand-over, every stream would be reset 2 s after each SIGTERM.
  options.extra_agent_flags = {"--drain-grace=2s"};
  // Each stream sends its own byte sequence in rounds every 20 ms and reads the echo of each
  // round back: both directions carry known bytes, checked by sha256 at the end.
  Streaming run = startStreaming(options, kStreams);
  Mesh& m = *run.mesh;
  harness::Process* streams = run.streams.get();
  REQUIRE(statReaches(m, 1, "resumable_streams", kStreams));
  REQUIRE(statReaches(m, 2, "resumable_streams", kStreams));
  std::printf(
      "memory held for retransmission while streaming: node1 %lld bytes, node2 %lld "
      "bytes, for %d streams\n",
      static_cast<long long>(statOf(m, 1, "resume_ledger_bytes")),
      static_cast<long long>(statOf(m, 2, "resume_ledger_bytes")), kStreams);

  // The source's agent, then the destination's, then both at once.
  const std::vector<std::vector<int>> rounds = {{1}, {2}, {1, 2}};
  std::map<int, int64_t> resumed_before = {{1, 0}, {2, 0}};
  for (const std::vector<int>& nodes : rounds) {
    INFO("upgrading node" << nodes.front() << (nodes.size() > 1 ? " and node2" : ""));
    std::vector<Mesh::Upgrade> ups;
    for (int node : nodes) {
      auto up = m.upgradeAgent(node);
      REQUIRE_OK(up);
      ups.push_back(*std::move(up));
    }
    for (size_t i = 0; i < ups.size(); ++i) {
      const int node = nodes[i];
      auto rc = ups[i].old->wait(absl::Seconds(30));
      REQUIRE_OK(rc);
      CHECK(*rc == 0);
      INFO(ups[i].old->log());
      CHECK(handedStreams(ups[i].old->log()) == kStreams);
      std::printf("node%d: SIGTERM to the new agent accepting: %.0f ms\n", node,
                  absl::ToDoubleMilliseconds(ups[i].ready_after));
      resumed_before[node] = 0;  // a new agent counts from zero
    }
    // Every stream continues: resumed on both ends (the restarted agents count from zero).
    for (int node : {1, 2}) {
      resumed_before[node] += kStreams;
      CHECK(statReaches(m, node, "streams_resumed", resumed_before[node]));
      CHECK(statReaches(m, node, "resumable_streams", kStreams));
      CHECK(statOf(m, node, "streams_resume_failed") == 0);
      CHECK(statOf(m, node, "streams_resume_expired") == 0);
    }
    REQUIRE(streams->running());
  }
  touch(run.release);
  auto done = streams->wait(absl::Seconds(60));
  REQUIRE_OK(done);
  INFO(streams->log());
  std::printf("streams: %s", streams->log().c_str());
  CHECK_THAT(streams->log(), Catch::Contains(absl::StrCat("OK=", kStreams, " BAD=0")));
  CHECK(counted(streams->log(), "BYTES=") > 0);
}

TEST_CASE("a peer agent without stream resumption: streams are drained as before",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  MeshOptions options;
  options.extra_agent_flags = {"--drain-grace=40s"};
  // node2's agent stands for an older release: it answers an offer with nothing.
  options.agent_command = [](const harness::Node& node, std::vector<std::string> argv) {
    if (node.index == 2) {
      argv.push_back("--stream-resume=off");
    }
    return argv;
  };
  Streaming run = startStreaming(options, 10);
  Mesh& m = *run.mesh;
  harness::Process* streams = run.streams.get();
  CHECK(statOf(m, 1, "resumable_streams") == 0);  // offered, not accepted
  auto up = m.upgradeAgent(1);
  REQUIRE_OK(up);
  // Nothing to hand over: the old agent serves its streams in place until they end.
  REQUIRE(m.waitAgentLog(1, "handover: took"));
  REQUIRE(up->old->running());
  touch(run.release);
  auto done = streams->wait(absl::Seconds(60));
  REQUIRE_OK(done);
  INFO(streams->log());
  CHECK_THAT(streams->log(), Catch::Contains("OK=10 BAD=0"));
  auto rc = up->old->wait(absl::Seconds(30));
  REQUIRE_OK(rc);
  CHECK(*rc == 0);
  INFO(up->old->log());
  CHECK_THAT(up->old->log(), Catch::Contains("handed 0 of 0 established streams over"));
  CHECK_THAT(up->old->log(), Catch::Contains("drain: handed over, 0 connections left"));
}

}  // namespace ferry::e2e
