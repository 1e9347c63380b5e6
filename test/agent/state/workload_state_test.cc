// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/state/workload_state.h"

#include <catch2/catch.hpp>
#include <set>

namespace ferry::agent {
namespace {

model::NodeSnapshot snapshot() {
  model::NodeSnapshot s;
  s.node = "node1";
  for (int i = 1; i <= 3; ++i) {
    model::Workload w;
    w.uid = "u" + std::to_string(i);
    w.key = {"default", "p" + std::to_string(i)};
    w.node = i == 1 ? "node1" : "node2";
    w.ips = {"10.244.2.1" + std::to_string(i), "fd00:244::2:1" + std::to_string(i)};
    s.workloads.push_back(w);
  }
  model::Service svc;
  svc.key = {"default", "web"};
  svc.vips = {"10.96.0.10", "fd00:96::a"};
  svc.ports.push_back({"http", 80, 8080, "", "TCP", ""});
  svc.ports.push_back({"named", 81, 0, "metrics", "TCP", ""});
  svc.ports.push_back({"empty", 82, 0, "", "TCP", ""});
  s.services.push_back(svc);
  model::ServiceEndpoints eps;
  eps.service = svc.key;
  eps.named_ports = {{"http", 8080}, {"named", 9090}};
  eps.endpoints.push_back({"10.244.2.12", "u2", "node2", "", true});
  eps.endpoints.push_back({"10.244.2.13", "u3", "node2", "", true});
  eps.endpoints.push_back({"10.244.2.19", "", "node2", "", false});  // not ready
  eps.endpoints.push_back({"fd00:244::2:12", "u2", "node2", "", true});
  s.endpoints.push_back(eps);
  return s;
}

TEST_CASE("VIP resolves to a ready endpoint with the target port", "[agent]") {
  WorkloadState state(snapshot());
  std::mt19937 rng(1);
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    Destination d = state.resolve("10.96.0.10", 80, rng);
    REQUIRE(d.workload != nullptr);
    CHECK(d.port == 8080);
    CHECK(d.service != nullptr);
    seen.insert(d.ip);
  }
  // Both ready endpoints are used; the not-ready one never is.
  CHECK(seen == std::set<std::string>{"10.244.2.12", "10.244.2.13"});
  Destination named = state.resolve("fd00:96:0::a", 81, rng);  // non-canonical IPv6 input
  CHECK(named.port == 9090);
  CHECK(named.ip == "fd00:244::2:12");  // the VIP's family
  CHECK(named.workload->uid == "u2");
}

TEST_CASE("pod IPs resolve directly, unknown IPs pass through, bad VIP ports refuse", "[agent]") {
  WorkloadState state(snapshot());
  std::mt19937 rng(1);
  Destination pod = state.resolve("fd00:244::2:12", 5000, rng);
  REQUIRE(pod.workload != nullptr);
  CHECK(pod.workload->uid == "u2");
  CHECK(pod.port == 5000);
  CHECK_FALSE(state.isLocal(*pod.workload));
  Destination outside = state.resolve("10.244.9.9", 80, rng);
  CHECK(outside.workload == nullptr);
  CHECK(outside.ip == "10.244.9.9");
  CHECK(state.resolve("10.96.0.10", 443, rng).ip.empty());  // no such service port
  // No targetPort and no named endpoint port: the service port itself.
  CHECK(state.resolve("10.96.0.10", 82, rng).port == 82);
}

TEST_CASE("the pod index names pods without a Service, and a full workload of a pod wins",
          "[agent]") {
  model::NodeSnapshot s = snapshot();
  model::Workload lone;  // a mesh pod no Service selects, on another node
  lone.uid = "u-lone";
  lone.key = {"default", "lone"};
  lone.node = "node3";
  lone.ips = {"10.244.3.7", "fd00:244::3:7"};
  lone.labels = {{"app", "lone"}};
  model::Workload outside = lone;  // a pod outside the mesh
  outside.uid = "u-out";
  outside.key = {"plain", "outside"};
  outside.ips = {"10.244.3.8"};
  outside.mesh_enabled = false;
  model::Workload stale = s.workloads[1];  // same pod as the full workload u2, fewer labels
  stale.key.name = "from-index";
  s.pod_index = {lone, outside, stale};
  WorkloadState state(std::move(s));
  std::mt19937 rng(1);

  Destination d = state.resolve("fd00:244:0::3:7", 9000, rng);
  REQUIRE(d.workload != nullptr);
  CHECK(d.workload->key.name == "lone");
  CHECK(d.workload->mesh_enabled);
  CHECK(d.workload->labels.at("app") == "lone");
  CHECK(d.port == 9000);
  REQUIRE(state.workloadByIp("10.244.3.8") != nullptr);
  CHECK_FALSE(state.workloadByIp("10.244.3.8")->mesh_enabled);
  CHECK(state.workloadByUid("u-lone") == d.workload);
  CHECK(state.workloadByUid("u2")->key.name == "p2");
  CHECK(state.workloadByIp("10.244.2.12")->key.name == "p2");
  CHECK(state.workloadByIp("10.244.3.9") == nullptr);
}

TEST_CASE("a pod-index entry keeps only the labels telemetry reads", "[agent]") {
  model::Workload w;
  w.uid = "u1";
  w.labels = {{"app", "web"},
              {"version", "v2"},
              {"service.istio.io/canonical-name", "web-canonical"},
              {"pod-template-hash", "5d4f8c"},
              {"team", "payments"}};
  model::Workload entry = model::podIndexEntry(w);
  CHECK(entry.uid == "u1");
  CHECK(entry.labels == model::Labels{{"app", "web"},
                                      {"version", "v2"},
                                      {"service.istio.io/canonical-name", "web-canonical"}});
}

}  // namespace
}  // namespace ferry::agent
