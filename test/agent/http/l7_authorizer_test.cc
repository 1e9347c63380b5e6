// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/l7_authorizer.h"

#include <catch2/catch.hpp>

namespace ferry::agent {
namespace {

// Built, not assigned: GCC 12 -O2 warns falsely (-Wrestrict) on assigning the one-letter uid.
model::Workload web() {
  return model::Workload{
      .uid = "w", .key = {"prod", "web-0"}, .labels = {{"app", "web"}, {"tier", "front"}}};
}

model::NodeSnapshot withPort(model::ServicePort port, model::Labels selector = {{"app", "web"}},
                             std::string ns = "prod") {
  model::Service s;
  s.key = {std::move(ns), "web"};
  s.selector = std::move(selector);
  s.ports.push_back(std::move(port));
  model::NodeSnapshot snap;
  snap.services.push_back(std::move(s));
  return snap;
}

model::ServicePort port(std::string name, uint16_t port, uint16_t target = 0,
                        std::string app_protocol = "") {
  model::ServicePort p;
  p.name = std::move(name);
  p.port = port;
  p.target_port = target;
  p.app_protocol = std::move(app_protocol);
  return p;
}

TEST_CASE("HTTP ports: Istio's protocol selection by appProtocol and port name", "[agent]") {
  struct Row {
    const char* description;
    model::NodeSnapshot snapshot;
    uint16_t port;
    bool http;
  };
  std::vector<Row> rows = {
      {"no Service: L4", {}, 8080, false},
      {"name http", withPort(port("http", 8080)), 8080, true},
      {"name http-api", withPort(port("http-api", 8080)), 8080, true},
      {"name grpc-x", withPort(port("grpc-x", 8080)), 8080, true},
      {"name h2c", withPort(port("h2c", 8080)), 8080, true},
      {"name HTTP2-web (case-insensitive)", withPort(port("HTTP2-web", 8080)), 8080, true},
      {"name httpx is not http", withPort(port("httpx", 8080)), 8080, false},
      {"name tcp-web", withPort(port("tcp-web", 8080)), 8080, false},
      {"name https: TLS is opaque", withPort(port("https", 8443)), 8443, false},
      {"unnamed port", withPort(port("", 8080)), 8080, false},
      {"appProtocol http", withPort(port("web", 8080, 0, "http")), 8080, true},
      {"appProtocol kubernetes.io/h2c", withPort(port("x", 8080, 0, "kubernetes.io/h2c")), 8080,
       true},
      {"appProtocol grpc", withPort(port("x", 8080, 0, "grpc")), 8080, true},
      {"appProtocol tcp wins over name http", withPort(port("http", 8080, 0, "tcp")), 8080, false},
      {"targetPort, not port, is what the pod serves", withPort(port("http", 80, 8080)), 8080,
       true},
      {"the Service port number is not the pod's", withPort(port("http", 80, 8080)), 80, false},
      {"other port of the pod", withPort(port("http", 8080)), 9090, false},
      {"Service selecting other pods", withPort(port("http", 8080), {{"app", "db"}}), 8080, false},
      {"Service in another namespace", withPort(port("http", 8080), {{"app", "web"}}, "dev"), 8080,
       false},
      {"Service without selector", withPort(port("http", 8080), {}), 8080, false},
  };
  for (const Row& row : rows) {
    INFO(row.description);
    CHECK(isHttpPort(row.snapshot, web(), row.port) == row.http);
  }
}

}  // namespace
}  // namespace ferry::agent
