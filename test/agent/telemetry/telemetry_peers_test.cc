// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Who the destination says connected: the node view checked against the peer certificate,
// the source's baggage over it, Istio's canonical service labels, and the cluster labels.

#include "agent/telemetry/telemetry_peers.h"

#include <catch2/catch.hpp>

#include "agent/telemetry/http_telemetry.h"
#include "metrics/scrape.h"
#include "status_testing.h"

namespace ferry::agent {
namespace {

using metrics::testing::httpGet;
using metrics::testing::sampleValue;

model::Workload pod(const std::string& name, const std::string& ip, model::Labels labels) {
  model::Workload w;
  w.uid = "u-" + name;
  w.key = {"default", name + "-5c4b"};
  w.workload_name = name;
  w.service_account = name;
  w.ips = {ip};
  w.labels = std::move(labels);
  return w;
}

WorkloadState state() {
  model::NodeSnapshot s;
  s.workloads = {pod("web", "10.244.2.11", {{"app", "web"}})};
  // The caller is known only from the pod index (not behind a Service on this node).
  s.pod_index = {pod("client", "10.244.1.11", {{"app", "client"}, {"version", "v3"}})};
  return WorkloadState(std::move(s));
}

LocalPod webPod() {
  LocalPod p;
  p.info = {.uid = "u-web",
            .name = "web-5c4b",
            .ns = "default",
            .service_account = "web",
            .ips = {"10.244.2.11"}};
  return p;
}

ConnectionInfo inbound(const WorkloadState& s, const std::string& principal,
                       const std::string& source_ip) {
  auto dst = SocketAddress::parse("10.244.2.11", 8080);
  REQUIRE_OK(dst);
  return inboundReport(
      s, webPod(),
      {.principal = principal, .mtls = true, .ip = source_ip, .address = source_ip + ":40000"},
      *dst, Decision{});
}

TEST_CASE("canonical service and revision follow Istio's label precedence", "[telemetry]") {
  struct Row {
    const char* description;
    model::Labels labels;
    const char* service;
    const char* revision;
  };
  const std::vector<Row> rows = {
      {"no labels: the workload's name and latest", {}, "web", "latest"},
      {"app and version", {{"app", "a"}, {"version", "v1"}}, "a", "v1"},
      {"app.kubernetes.io over app",
       {{"app", "a"},
        {"version", "v1"},
        {"app.kubernetes.io/name", "k"},
        {"app.kubernetes.io/version", "k1"}},
       "k",
       "k1"},
      {"service.istio.io over both",
       {{"app", "a"},
        {"app.kubernetes.io/name", "k"},
        {"service.istio.io/canonical-name", "c"},
        {"version", "v1"},
        {"service.istio.io/canonical-revision", "c1"}},
       "c",
       "c1"},
      {"an empty label counts as absent", {{"app", ""}, {"version", ""}}, "web", "latest"},
  };
  for (const Row& row : rows) {
    INFO(row.description);
    auto [service, revision] = canonicalService(pod("web", "10.244.2.11", row.labels));
    CHECK(service == row.service);
    CHECK(revision == row.revision);
  }
}

TEST_CASE("the node view names the source only when the certificate proves that pod",
          "[telemetry]") {
  WorkloadState s = state();
  ConnectionInfo ok = inbound(s, "cluster.local/ns/default/sa/client", "10.244.1.11");
  CHECK(ok.source.workload == "client");
  CHECK(ok.source.ns == "default");
  CHECK(ok.source.app == "client");
  CHECK(ok.source.version == "v3");
  CHECK(ok.source.canonical_service == "client");
  CHECK(ok.source.canonical_revision == "v3");
  CHECK(ok.destination.canonical_service == "web");
  CHECK(ok.destination.canonical_revision == "latest");
  // Another identity from the client's address: not the client; only what the certificate says.
  ConnectionInfo other = inbound(s, "cluster.local/ns/tools/sa/prober", "10.244.1.11");
  CHECK(other.source.workload.empty());
  CHECK(other.source.ns == "tools");
  CHECK(other.source.principal == "spiffe://cluster.local/ns/tools/sa/prober");
  CHECK(other.source.app.empty());
  // An address nobody has: the certificate's namespace.
  ConnectionInfo unknown = inbound(s, "cluster.local/ns/default/sa/client", "127.0.0.1");
  CHECK(unknown.source.workload.empty());
  CHECK(unknown.source.ns == "default");
}

TEST_CASE("the source's sourceBaggage is what the destination adopts", "[telemetry]") {
  WorkloadState s = state();
  LocalPod client;
  client.info = {.uid = "u-client", .name = "client-5c4b", .ns = "default"};
  PodIdentity id{"default", "client"};
  hbone::Baggage b = sourceBaggage(s, client, id, "east");
  CHECK(hbone::encodeBaggage(b) ==
        "k8s.cluster.name=east,k8s.namespace.name=default,k8s.deployment.name=client,"
        "k8s.serviceaccount.name=client,service.name=client,service.version=v3,"
        "k8s.pod.label.app=client,k8s.pod.label.version=v3");
  // A destination whose view lacks the caller (its address unknown) names it from the baggage.
  ConnectionInfo info = inbound(s, "cluster.local/ns/default/sa/client", "10.9.9.9");
  adoptBaggage(info, hbone::decodeBaggage(hbone::encodeBaggage(b)));
  CHECK(info.source.workload == "client");
  CHECK(info.source.ns == "default");
  CHECK(info.source.cluster == "east");
  CHECK(info.source.canonical_service == "client");
  CHECK(info.source.canonical_revision == "v3");
  CHECK(info.source.app == "client");
  CHECK(info.source.principal == "spiffe://cluster.local/ns/default/sa/client");  // the cert's
  CHECK(info.source.address == "10.9.9.9:40000");
  // A pod the state does not hold at all still sends its name and kind "pod".
  LocalPod stranger;
  stranger.info = {.uid = "u-x", .name = "x-1", .ns = "default"};
  CHECK(hbone::encodeBaggage(sourceBaggage(s, stranger, {"default", "x"}, "east")) ==
        "k8s.cluster.name=east,k8s.namespace.name=default,k8s.pod.name=x-1,"
        "k8s.serviceaccount.name=x");
}

TEST_CASE("every Istio metric carries both clusters and the canonical labels", "[telemetry]") {
  auto t = Telemetry::create({.metrics_address = "127.0.0.1:0", .cluster_name = "west"},
                             std::make_shared<accesslog::MemorySink>());
  REQUIRE_OK(t);
  WorkloadState s = state();
  // From the node view: this cluster on both sides.
  ConnectionInfo local = inbound(s, "cluster.local/ns/default/sa/client", "10.244.1.11");
  (*t)->openConnection(local).close({.bytes_from_source = 7, .bytes_to_source = 9});
  // From baggage naming another cluster; and a peer nobody knows.
  ConnectionInfo remote = inbound(s, "cluster.local/ns/default/sa/client", "10.9.9.9");
  adoptBaggage(remote, {.cluster = "east", .ns = "default", .workload = "client"});
  (*t)->openConnection(remote).close({});
  ConnectionInfo stranger = inbound(s, "", "10.9.9.8");
  (*t)->openConnection(stranger).close({});
  http::RequestRecord record;
  record.status = 200;
  record.authorized = true;
  record.allowed = true;
  InboundPeer peer{"spiffe://cluster.local/ns/default/sa/client", "10.9.9.9", "10.244.2.11", 8080,
                   hbone::Baggage{.cluster = "east", .ns = "default", .workload = "client"}};
  (*t)->recordRequest(httpRequestInfo(s, webPod(), peer, record));
  std::string text = httpGet(absl::StrCat("http://127.0.0.1:", (*t)->metricsPort(), "/metrics"));
  const std::map<std::string, std::string> kLocal = {{"source_workload", "client"},
                                                     {"source_cluster", "west"},
                                                     {"source_canonical_service", "client"},
                                                     {"source_canonical_revision", "v3"},
                                                     {"destination_cluster", "west"},
                                                     {"destination_canonical_service", "web"},
                                                     {"destination_canonical_revision", "latest"}};
  for (const char* family :
       {"istio_tcp_connections_opened_total", "istio_tcp_connections_closed_total",
        "istio_tcp_received_bytes_total", "istio_tcp_sent_bytes_total"}) {
    INFO(family);
    CHECK(sampleValue(text, family, kLocal).has_value());
  }
  CHECK(sampleValue(text, "istio_tcp_received_bytes_total", kLocal) == 7);
  CHECK(sampleValue(text, "istio_tcp_sent_bytes_total", kLocal) == 9);
  CHECK(sampleValue(text, "istio_tcp_connections_opened_total",
                    {{"source_workload", "client"},
                     {"source_cluster", "east"},
                     {"source_canonical_service", "unknown"},
                     {"destination_cluster", "west"}}) == 1);
  CHECK(sampleValue(text, "istio_tcp_connections_opened_total",
                    {{"source_workload", "unknown"},
                     {"source_cluster", "unknown"},
                     {"destination_cluster", "west"}}) == 1);
  for (const char* family : {"istio_requests_total", "istio_request_duration_milliseconds_count",
                             "istio_request_bytes_count", "istio_response_bytes_count"}) {
    INFO(family);
    CHECK(sampleValue(text, family,
                      {{"source_cluster", "east"},
                       {"destination_cluster", "west"},
                       {"destination_canonical_service", "web"},
                       {"response_code", "200"}}) == 1);
  }
}

}  // namespace
}  // namespace ferry::agent
