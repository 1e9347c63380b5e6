// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Every payload size around every buffer and frame boundary arrives byte-exact, in every mode
// (issue 17): a new or a pooled HBONE connection, cross-node or same-node, a TCP or an
// HTTP-marked port, IPv4 or IPv6, the client or the server writing first, and HTTP through a
// Service with an HTTPRoute (the routed path: its upstream an HBONE stream read and written in
// place across nodes, an in-process pipe into the destination's inbound relay on the same node;
// issue 19 point 3). Agents run as users run them: fed by ferry-controller.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "e2e/manifests.h"
#include "e2e/mesh.h"
#include "e2e/observe.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

constexpr size_t k64MiB = 64u << 20;
constexpr uint16_t kEchoPort = 8080;       // TCP ("web" Service, tcp-web)
constexpr uint16_t kHttpPort = 9080;       // HTTP ("api" Service, http-api)
constexpr char kApiVip[] = "10.96.0.20";   // the "api" Service of manifests.h
constexpr uint16_t kFirstPortBase = 9100;  // TCP, one server-speaks-first app per batch

// 1 and 2; the first DATA frame around 8 KiB (half a TLS record, where frames stopped being
// coalesced) and 16 KiB (one TLS record / HTTP/2 frame); 64 KiB (the initial HTTP/2 window);
// 1 MiB (the stream window).
std::vector<size_t> boundarySizes() {
  std::vector<size_t> sizes = {1, 2};
  for (size_t s = 8183; s <= 8200; ++s) {
    sizes.push_back(s);
  }
  for (size_t s = 16375; s <= 16393; ++s) {
    sizes.push_back(s);
  }
  for (size_t s : {65535, 65536, 65537, 1 << 20}) {
    sizes.push_back(s);
  }
  return sizes;
}

enum class Route { kCrossNode, kSameNode };
enum class Kind { kEcho, kFirst, kHttp, kRouted };

// Every request to the api Service's HTTP port is routed by the source's agent.
constexpr char kApiRoute[] = R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: api
  namespace: default
spec:
  parentRefs:
  - {group: "", kind: Service, name: api, port: 9080}
  rules:
  - backendRefs:
    - {name: api, port: 9080}
)";

struct Batch {
  Route route;
  bool ipv6;
  Kind kind;
  bool pooled;
  std::vector<size_t> sizes;

  std::string label() const {
    return absl::StrCat(route == Route::kCrossNode ? "cross-node" : "same-node", "/",
                        ipv6 ? "ipv6" : "ipv4", "/",
                        kind == Kind::kEcho    ? "tcp-client-first"
                        : kind == Kind::kFirst ? "tcp-server-first"
                        : kind == Kind::kHttp  ? "http-post"
                                               : "http-post-routed",
                        "/", pooled ? "pooled" : "new");
  }
};

struct Outcome {
  int rows = 0;
  std::vector<std::string> failures;  // the whole ROW line of each
};

// "ROW <label> size=<n> OK <ms>" / "ROW <label> size=<n> FAIL <why>", then "DONE rows=..".
Outcome parseRows(const std::string& out, size_t expected_rows, const std::string& label) {
  Outcome o;
  bool done = false;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, "ROW ")) {
      ++o.rows;
      if (line.find(" OK ") == absl::string_view::npos) {
        o.failures.emplace_back(line);
      }
    }
    done |= absl::StartsWith(line, "DONE ");
  }
  if (!done || static_cast<size_t>(o.rows) != expected_rows) {
    o.failures.push_back(absl::StrCat("ROW ", label, ": batch ended after ", o.rows, " of ",
                                      expected_rows, " rows:\n", out));
  }
  return o;
}

std::string sizesArg(const std::vector<size_t>& sizes) {
  return "--sizes=" + absl::StrJoin(sizes, ",");
}

TEST_CASE("every size around every boundary echoes byte-exact in every mode", "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  MeshOptions options;
  options.controller = true;
  options.pods_per_node = 5;
  // One stream per HBONE connection: a row whose connection is still open needs a new one, so
  // "new" rows each start a connection (checked below with the agents' counters).
  options.extra_agent_flags = {"--max-streams-per-connection=1"};
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE_OK(m.applyManifest("service-api.yaml", kApiService));
  REQUIRE_OK(m.applyManifest("route-api.yaml", kApiRoute));
  const harness::Pod& server = m.pod(2, 1);
  REQUIRE_OK(m.startApp(server, {"echo-server", absl::StrCat("--port=", kEchoPort)}, kEchoPort));
  REQUIRE_OK(m.startApp(server, {"http-echo", absl::StrCat("--port=", kHttpPort)}, kHttpPort));

  // The batches. A cross-node "new" batch has a client pod of its own on node 1 (the pool is
  // keyed by source pod and destination address), so its first row finds no connection left by
  // an earlier batch; pooled batches share n1p4. Same-node traffic has no HBONE connection: there
  // "new" and "pooled" differ only in the apps' connections (held open or closed per row).
  const std::vector<size_t> sizes = boundarySizes();
  std::vector<Batch> batches;
  for (Route route : {Route::kCrossNode, Route::kSameNode}) {
    for (bool ipv6 : {false, true}) {
      for (Kind kind : {Kind::kEcho, Kind::kFirst, Kind::kHttp, Kind::kRouted}) {
        if (kind == Kind::kRouted && ipv6) {
          continue;  // the api Service has an IPv4 ClusterIP only
        }
        for (bool pooled : {false, true}) {
          batches.push_back({route, ipv6, kind, pooled, sizes});
        }
      }
    }
  }
  // 64 MiB a few times: client-first on a new cross-node connection, HTTP on a pooled IPv6 one,
  // routed HTTP across nodes (streamed both ways through the upstream stream), server-first
  // cross-node and same-node.
  for (Batch& b : batches) {
    bool big = (b.route == Route::kCrossNode && !b.ipv6 && b.kind == Kind::kEcho && !b.pooled) ||
               (b.route == Route::kCrossNode && b.kind == Kind::kRouted && b.pooled) ||
               (b.route == Route::kCrossNode && b.ipv6 && b.kind == Kind::kHttp && b.pooled) ||
               (b.route == Route::kCrossNode && b.ipv6 && b.kind == Kind::kFirst && !b.pooled) ||
               (b.route == Route::kSameNode && !b.ipv6 && b.kind == Kind::kFirst && b.pooled);
    if (big) {
      b.sizes.push_back(k64MiB);
    }
  }
  // A server-speaks-first app per batch: it serves its batch's sizes in connection order.
  std::vector<uint16_t> first_ports(batches.size(), 0);
  uint16_t next_first_port = kFirstPortBase;
  for (size_t i = 0; i < batches.size(); ++i) {
    if (batches[i].kind == Kind::kFirst) {
      first_ports[i] = next_first_port++;
      REQUIRE_OK(m.startApp(
          server,
          {"first-server", absl::StrCat("--port=", first_ports[i]), sizesArg(batches[i].sizes)},
          first_ports[i]));
    }
  }

  // curl, a 10,000-byte body, on a new connection (n1p4 has not talked to n2p1 yet) and then
  // through the api Service VIP (routed: it has an HTTPRoute) from the same pod.
  const std::string body_path = m.cluster().scratchDir() + "/body-10000";
  {
    std::string body(10000, '\0');
    std::mt19937 rng(17);
    for (char& c : body) {
      c = static_cast<char>(rng());
    }
    std::ofstream(body_path, std::ios::binary) << body;
  }
  for (const std::string& host : {server.ipv4, std::string(kApiVip)}) {
    INFO("curl --data-binary @10000-byte-file to " << host << ":" << kHttpPort);
    const std::string out_path = m.cluster().scratchDir() + "/curl-out";
    std::filesystem::remove(out_path);
    auto curl = m.run(m.pod(1, 4), {"/usr/bin/curl", "-sS", "--max-time", "20", "--data-binary",
                                    "@" + body_path, "-o", out_path, "-w", "%{http_code}",
                                    absl::StrCat("http://", host, ":", kHttpPort, "/echo")});
    CHECK_OK(curl);  // exit 0
    if (curl.ok()) {
      CHECK(*curl == "200");
      std::ifstream sent(body_path, std::ios::binary), echoed(out_path, std::ios::binary);
      CHECK(std::string(std::istreambuf_iterator<char>(echoed), {}) ==
            std::string(std::istreambuf_iterator<char>(sent), {}));
    }
  }

  const absl::Time start = absl::Now();
  int rows = 0;
  int64_t same_node_direct = 0;  // same-node rows the kernel carried app to app
  std::vector<std::string> failures;
  int64_t routed_pipes_same_node = 0;  // routed upstreams opened, same-node batches
  int64_t routed_streams_cross_node = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    const Batch& b = batches[i];
    const bool cross = b.route == Route::kCrossNode;
    // Each kind's new batches have a pod of their own (IPv4 and IPv6 are different pool keys).
    const harness::Pod& client = !cross                    ? m.pod(2, 2)
                                 : b.pooled                ? m.pod(1, 4)
                                 : b.kind == Kind::kRouted ? m.pod(1, 5)
                                                           : m.pod(1, 1 + static_cast<int>(b.kind));
    const bool routed = b.kind == Kind::kRouted;
    uint16_t port = b.kind == Kind::kFirst  ? first_ports[i]
                    : b.kind == Kind::kEcho ? kEchoPort
                                            : kHttpPort;
    const std::string host = routed ? kApiVip : b.ipv6 ? server.ipv6 : server.ipv4;
    const int client_node = cross ? 1 : 2;
    auto before = m.stats(client_node);
    auto before_dst = m.stats(2);
    const double direct_before = bpfEvent(m.metricsPort(client_node), "connect_direct");
    REQUIRE_OK(before);
    REQUIRE_OK(before_dst);
    auto out =
        m.run(client,
              {"/usr/bin/python3", meshAppsScript(), "matrix", "--host=" + host,
               absl::StrCat("--port=", port),
               b.kind == Kind::kEcho    ? "--kind=echo"
               : b.kind == Kind::kFirst ? "--kind=first"
                                        : "--kind=http",
               b.pooled ? "--conn=pooled" : "--conn=new", sizesArg(b.sizes), "--text=" + b.label()},
              absl::Seconds(300));
    Outcome o = out.ok()
                    ? parseRows(*out, b.sizes.size(), b.label())
                    : Outcome{0, {absl::StrCat("ROW ", b.label(), ": ", out.status().ToString())}};
    rows += o.rows;
    failures.insert(failures.end(), o.failures.begin(), o.failures.end());
    auto after = m.stats(client_node);
    auto after_dst = m.stats(2);
    REQUIRE_OK(after);
    REQUIRE_OK(after_dst);
    auto delta = [&](const std::string& name) { return (*after)[name] - (*before)[name]; };
    const int64_t n = static_cast<int64_t>(b.sizes.size());
    auto dst_delta = [&](const std::string& name) {
      return (*after_dst)[name] - (*before_dst)[name];
    };
    INFO(b.label());
    if (routed) {
      // The source's agent routed every row over its pooled upstreams (one opened per source
      // pod and endpoint, reused by later rows and batches): across nodes each is an HBONE stream
      // the destination's agent serves as an HTTP connection, on this node an in-process pipe
      // into the destination's inbound HTTP relay; never another kind.
      const int64_t streams = delta("routed_upstream_streams");
      const int64_t pipes = delta("routed_upstream_pipes");
      CHECK(delta("routed_upstream_sockets") == 0);
      CHECK(delta("outbound_hbone") == streams);
      CHECK(dst_delta("http_connections") == (cross ? streams : pipes));
      if (cross) {
        CHECK(pipes == 0);
        CHECK(dst_delta("inbound_hbone_streams") == streams);
        routed_streams_cross_node += streams;
      } else {
        CHECK(streams == 0);
        CHECK(delta("outbound_same_node") == pipes);
        routed_pipes_same_node += pipes;
      }
      continue;
    }
    // The destination agent parsed HTTP on the HTTP port, and only there.
    CHECK(dst_delta("http_connections") == (b.kind == Kind::kHttp ? n : 0));
    if (cross) {
      CHECK(delta("outbound_hbone") == n);
      CHECK(dst_delta("inbound_hbone_streams") == n);
      if (b.pooled) {
        // Each worker keeps its own pool: at most one connection each.
        CHECK(delta("pool_connections_opened") <= options.workers);
        CHECK(delta("pool_streams_reused") >= n - options.workers);
      } else {
        CHECK(delta("pool_connections_opened") == n);  // every row on a new connection
        CHECK(delta("pool_streams_reused") == 0);
      }
    } else {
      // Relayed by the agent, or carried app to app once the agent admitted the pair (the
      // same-node direct path): every row one or the other.
      const double direct_after = bpfEvent(m.metricsPort(client_node), "connect_direct");
      CHECK(delta("outbound_same_node") + (direct_after - direct_before) == n);
      same_node_direct += static_cast<int64_t>(direct_after - direct_before);
      CHECK(delta("outbound_hbone") == 0);
    }
  }
  const absl::Duration took = absl::Now() - start;

  WARN("size matrix: " << rows << " rows in " << batches.size() << " batches, " << failures.size()
                       << " failed, " << same_node_direct << " same-node rows direct, "
                       << absl::FormatDuration(took) << (failures.empty() ? "" : "\n")
                       << absl::StrJoin(failures, "\n"));
  CHECK(rows >= static_cast<int>(batches.size() * sizes.size()));
  CHECK(failures.empty());
  CHECK(same_node_direct > 0);  // the default same-node path was exercised, not only the relay
  CHECK(routed_streams_cross_node >= 1);
  CHECK(routed_pipes_same_node >= 1);
  if (!failures.empty()) {
    WARN("node1 agent log:\n" << m.agentLog(1) << "\nnode2 agent log:\n" << m.agentLog(2));
  }
}

}  // namespace
}  // namespace ferry::e2e
