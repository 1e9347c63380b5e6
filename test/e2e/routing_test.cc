// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Traffic management through the mesh (issue 8): the client's agent (node 1) terminates HTTP
// for Services with an HTTPRoute and routes every request; backends are Python HTTP servers in
// pods on both nodes (mesh_apps.py http-app). Figures (split, success rate, 504 timing) are
// printed for the report; assertions are on counts, never on time.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "e2e/http_apps.h"
#include "e2e/mesh.h"
#include "e2e/observe.h"
#include "eventually.h"
#include "metrics/scrape.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

using ferry::testing::eventually;
using metrics::testing::sampleValue;
using namespace std::chrono_literals;

std::map<std::string, std::string> withLabel(std::map<std::string, std::string> labels,
                                             const std::string& key, const std::string& value) {
  labels[key] = value;
  return labels;
}

std::string service(const std::string& name, const std::string& vip, int target_port,
                    const std::string& selector_app,
                    const std::vector<std::pair<std::string, std::string>>& annotations = {}) {
  std::string out = absl::StrCat("apiVersion: v1\nkind: Service\nmetadata:\n  name: ", name,
                                 "\n  namespace: default\n");
  if (!annotations.empty()) {
    absl::StrAppend(&out, "  annotations:\n");
    for (const auto& [key, value] : annotations) {
      absl::StrAppend(&out, "    ", key, ": \"", value, "\"\n");
    }
  }
  absl::StrAppend(&out, "spec:\n  clusterIP: ", vip,
                  "\n  ports:\n  - name: http\n    port: 80\n    targetPort: ", target_port, "\n");
  if (!selector_app.empty()) {
    absl::StrAppend(&out, "  selector:\n    app: ", selector_app, "\n");
  }
  return out;
}

// The EndpointSlice of a selector-less Service: `pods` as {node, pod}.
std::string endpointSlice(const Mesh& m, const std::string& service, int port,
                          const std::vector<std::pair<int, int>>& pods) {
  std::string out = absl::StrCat(
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: ", service,
      "-1\n  namespace: default\n  labels:\n    kubernetes.io/service-name: ", service,
      "\naddressType: IPv4\nendpoints:\n");
  for (auto [node, pod] : pods) {
    absl::StrAppend(&out, "- addresses: [\"", m.pod(node, pod).ipv4,
                    "\"]\n  targetRef: {kind: Pod, uid: uid-n", node, "p", pod, "}\n");
  }
  absl::StrAppend(&out, "ports:\n- name: http\n  port: ", port, "\n");
  return out;
}

// front -> v1 (n2p1) / v2 (n1p2) by weight; flaky, slow and pool route to themselves; rr
// (round robin over three pods) and limited (one connection, one waiting request) too.
std::string services(const Mesh& m) {
  return absl::StrCat(
      service("front", "10.96.0.30", 8080, "n2p1"), "---\n",
      service("v1", "10.96.0.31", 8080, "n2p1"), "---\n", service("v2", "10.96.0.32", 8080, "n1p2"),
      "---\n", service("flaky", "10.96.0.33", 8081, "n2p1"), "---\n",
      service("slow", "10.96.0.34", 8082, "n2p1"), "---\n", service("pool", "10.96.0.35", 8083, ""),
      "---\n",
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
      "  name: pool-1\n  namespace: default\n  labels:\n"
      "    kubernetes.io/service-name: pool\naddressType: IPv4\nendpoints:\n",
      absl::StrCat("- addresses: [\"", m.pod(1, 2).ipv4,
                   "\"]\n  targetRef: {kind: Pod, uid: uid-n1p2}\n"),
      absl::StrCat("- addresses: [\"", m.pod(2, 1).ipv4,
                   "\"]\n  targetRef: {kind: Pod, uid: uid-n2p1}\n"),
      absl::StrCat("- addresses: [\"", m.pod(2, 2).ipv4,
                   "\"]\n  targetRef: {kind: Pod, uid: uid-n2p2}\n"),
      "ports:\n- name: http\n  port: 8083\n", "---\n",
      service("rr", "10.96.0.36", 8084, "", {{"ferry.dev/lb-policy", "round-robin"}}), "---\n",
      endpointSlice(m, "rr", 8084, {{1, 2}, {2, 1}, {2, 2}}), "---\n",
      service("limited", "10.96.0.37", 8085, "n2p1",
              {{"ferry.dev/max-connections", "1"}, {"ferry.dev/max-pending-requests", "1"}}));
}

std::string route(const std::string& name, const std::string& parent, const std::string& rule) {
  return absl::StrCat(
      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n"
      "  name: ",
      name, "\n  namespace: default\nspec:\n  parentRefs:\n  - {group: \"\", kind: ",
      "Service, name: ", parent, ", port: 80}\n  rules:\n", rule);
}

std::string splitRoute(int w1, int w2) {
  return route("split", "front",
               absl::StrCat("  - backendRefs:\n    - {name: v1, port: 80, weight: ", w1,
                            "}\n    - {name: v2, port: 80, weight: ", w2, "}\n"));
}

// Backends: n2p1 answers "n2p1" on 8080, fails every other request on 8081, hangs on 8082;
// n1p2 answers "n1p2" on 8080; on 8083 (pool) n1p2 and n2p1 answer 200, n2p2 always 503; on
// 8084 (rr) n1p2, n2p1 and n2p2 answer their names; n2p1 answers on 8085 (limited) after 2 s.
// With every backend running, the services applied, and `route_yaml` as route.yaml.
std::unique_ptr<Mesh> startRoutedMesh(const std::string& route_yaml,
                                      std::vector<std::string> flags = {}) {
  MeshOptions options;
  options.extra_agent_flags = std::move(flags);
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  auto app = [&](int node, int pod, uint16_t port, const std::string& behavior) {
    REQUIRE_OK(m.startApp(m.pod(node, pod),
                          {"http-app", absl::StrCat("--port=", port),
                           "--name=" + m.pod(node, pod).name, "--behavior=" + behavior},
                          port));
  };
  app(2, 1, 8080, "ok");
  app(2, 1, 8081, "fail50");
  app(2, 1, 8082, "hang");
  app(2, 1, 8083, "ok");
  app(1, 2, 8080, "ok");
  app(1, 2, 8083, "ok");
  app(2, 2, 8083, "status:503");
  app(1, 2, 8084, "ok");
  app(2, 1, 8084, "ok");
  app(2, 2, 8084, "ok");
  app(2, 1, 8085, "sleep:2000");
  REQUIRE_OK(m.applyManifest("services.yaml", services(m)));
  REQUIRE_OK(m.applyManifest("route.yaml", route_yaml));
  return std::move(*mesh);
}

// The value of `metric`{route="<route>"} on node 1's metrics page (-1 when absent).
double routeMetric(Mesh& m, const std::string& metric, const std::string& route_name,
                   double at_least = 0) {
  std::string page = scrapeUntil(m.metricsPort(1), metric,
                                 {{"route", route_name}, {"namespace", "default"}}, at_least);
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (absl::StartsWith(line, metric + "{") &&
        line.find("route=\"" + route_name + "\"") != absl::string_view::npos) {
      return std::stod(std::string(line.substr(line.rfind(' ') + 1)));
    }
  }
  return -1;
}

TEST_CASE("routing e2e: weights 90/10 over 10000 requests split within 2 points",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startRoutedMesh(splitRoute(90, 10));
  Mesh& m = *mesh;
  nlohmann::json r = httpLoad(m, "10.96.0.30", 10000, 8);
  INFO(r.dump());
  REQUIRE(statusCount(r, "200") == 10000);
  const double v1 = r["body"].value("n2p1", 0);
  const double v2 = r["body"].value("n1p2", 0);
  const double share = 100.0 * v1 / (v1 + v2);
  std::cout << "routing e2e: 90/10 split observed " << share << "% / " << 100 - share << "% over "
            << v1 + v2 << " requests in " << r["elapsed_s"] << " s\n";
  CHECK(v1 + v2 == 10000);
  CHECK(share >= 88.0);
  CHECK(share <= 92.0);
  CHECK(routeMetric(m, "ferry_route_requests_total", "split", 10000) >= 10000);
}

TEST_CASE(
    "routing e2e: 2 retries turn a 50% failing backend into 99% success and POST is sent once",
    "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startRoutedMesh(route("flaky", "flaky",
                                    "  - backendRefs:\n    - {name: flaky, port: 80}\n"
                                    "    retry: {attempts: 2, codes: [503], backoff: 5ms}\n"));
  Mesh& m = *mesh;
  // The backend fails exactly every other request it receives. One connection, so the tries of
  // one request are not interleaved with another's: with independent 50% failures, 2 retries
  // could only reach 87.5%.
  nlohmann::json r = httpLoad(m, "10.96.0.33", 1000, 1);
  INFO(r.dump());
  const int64_t ok = statusCount(r, "200");
  std::cout << "routing e2e: 50% failing backend, 2 retries: " << ok << "/1000 succeeded\n";
  CHECK(ok >= 990);
  nlohmann::json seen = backendStats(m, 2, 1, 8081);
  const int64_t backend_gets = seen.value("GET", 0);
  const double retries = routeMetric(m, "ferry_route_retries_total", "flaky",
                                     static_cast<double>(backend_gets - 1000));
  std::cout << "routing e2e: backend saw " << backend_gets << " GETs, ferry_route_retries_total "
            << retries << "\n";
  CHECK(retries == static_cast<double>(backend_gets - 1000));
  CHECK(backend_gets > 1000);
  // Each failed try's 503 was read to its end and its connection kept: one upstream connection
  // carried every try (closing instead would have made one per retry).
  std::cout << "routing e2e: the backend saw " << seen.value("connections", 0)
            << " connection(s)\n";
  CHECK(seen.value("connections", 0) == 1);

  // POST is not idempotent: the backend sees each once, half of them fail.
  nlohmann::json p = httpLoad(m, "10.96.0.33", 100, 1, "POST");
  INFO(p.dump());
  nlohmann::json after = backendStats(m, 2, 1, 8081);
  CHECK(after.value("POST", 0) == 100);
  CHECK(statusCount(p, "200") + statusCount(p, "503") == 100);
  CHECK(statusCount(p, "503") > 0);
}

TEST_CASE("routing e2e: a hanging backend gets 504 at the request timeout", "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startRoutedMesh(route("slow", "slow",
                                    "  - backendRefs:\n    - {name: slow, port: 80}\n"
                                    "    timeouts: {request: 300ms}\n"));
  Mesh& m = *mesh;
  nlohmann::json r = httpLoad(m, "10.96.0.34", 5, 1);
  INFO(r.dump());
  CHECK(statusCount(r, "504") == 5);
  std::cout << "routing e2e: 504 after (ms, timeout 300 ms): " << r["ms"].dump() << "\n";
  CHECK(routeMetric(m, "ferry_route_timeouts_total", "slow", 5) == 5);
}

TEST_CASE("routing e2e: fault injection answers the annotated status without forwarding",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  std::string faulty = route("faulty", "front", "  - backendRefs:\n    - {name: v1, port: 80}\n");
  faulty.replace(faulty.find("  namespace: default\n"), 21,
                 "  namespace: default\n  annotations:\n    fault.ferry.dev/abort-status: \"418\"\n"
                 "    fault.ferry.dev/abort-percent: \"50\"\n");
  auto mesh = startRoutedMesh(faulty);
  Mesh& m = *mesh;
  nlohmann::json r = httpLoad(m, "10.96.0.30", 200, 2);
  INFO(r.dump());
  const int64_t aborted = statusCount(r, "418");
  std::cout << "routing e2e: 50% abort fault: " << aborted << " of 200 answered 418\n";
  CHECK(aborted + statusCount(r, "200") == 200);
  CHECK(aborted > 0);
  CHECK(aborted < 200);
  // Aborted requests never reach the backend.
  CHECK(backendStats(m, 2, 1, 8080).value("GET", 0) == 200 - aborted);
  CHECK(routeMetric(m, "ferry_route_faults_injected_total", "faulty",
                    static_cast<double>(aborted)) == static_cast<double>(aborted));
}

TEST_CASE("routing e2e: an endpoint answering 503 is ejected and returns after the interval",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh =
      startRoutedMesh(route("pool", "pool", "  - backendRefs:\n    - {name: pool, port: 80}\n"),
                      {"--outlier-base-ejection-ms=3000"});
  Mesh& m = *mesh;
  // One connection, one request at a time: every failure lands before the next pick.
  nlohmann::json first = httpLoad(m, "10.96.0.35", 300, 1);
  INFO(first.dump());
  const int64_t bad_first = backendStats(m, 2, 2, 8083).value("GET", 0);
  std::cout << "routing e2e: 503 endpoint got " << bad_first << " of 300 requests\n";
  // 5 consecutive 503s eject it (again after each 3 s interval while the run lasts); without
  // ejection it would get about 100.
  std::cout << "routing e2e: (300 requests took " << first["elapsed_s"] << " s)\n";
  CHECK(bad_first >= 5);
  CHECK(bad_first <= 20);
  CHECK(statusCount(first, "200") == 300 - bad_first);
  const double ejections = routeMetric(m, "ferry_route_ejections_total", "pool", 1);
  CHECK(ejections >= 1);
  // The k-th ejection lasts k x 3 s and began before the run ended (a slow run outlives the
  // first interval and is ejected again, for longer): after that it is picked again. Probe with
  // one request at a time until the 503 endpoint answers one, bounded by that interval.
  const std::chrono::milliseconds ejected_for(3000 *
                                              static_cast<int64_t>(std::max(1.0, ejections)));
  CHECK(eventually(
      [&] {
        httpLoad(m, "10.96.0.35", 1, 1);
        return backendStats(m, 2, 2, 8083).value("GET", 0) > bad_first;
      },
      ejected_for + 10s, "the ejected 503 endpoint to be picked again", 250ms));
  nlohmann::json second = httpLoad(m, "10.96.0.35", 100, 1);
  INFO(second.dump());
  const int64_t bad_second = backendStats(m, 2, 2, 8083).value("GET", 0) - bad_first;
  std::cout << "routing e2e: after the interval the 503 endpoint got " << bad_second
            << " of 100 requests\n";
  CHECK(bad_second >= 1);
  CHECK(bad_second <= 10);
}

TEST_CASE("routing e2e: a round-robin Service spreads 300 requests exactly 100 per endpoint",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startRoutedMesh(route("rr", "rr", "  - backendRefs:\n    - {name: rr, port: 80}\n"));
  Mesh& m = *mesh;
  nlohmann::json r = httpLoad(m, "10.96.0.36", 300, 3);
  INFO(r.dump());
  std::cout << "routing e2e: round robin over 3 endpoints, 300 requests: " << r["body"].dump()
            << "\n";
  CHECK(statusCount(r, "200") == 300);
  CHECK(r["body"].value("n1p2", 0) == 100);
  CHECK(r["body"].value("n2p1", 0) == 100);
  CHECK(r["body"].value("n2p2", 0) == 100);
  CHECK(backendStats(m, 2, 2, 8084).value("GET", 0) == 100);

  // The source's agent reports every routed request itself (reporter="source"), per endpoint
  // picked, with Istio's labels; and logs one line per request.
  std::map<std::string, std::string> labels = {
      {"reporter", "source"},
      {"source_workload", "n1p1"},
      {"source_principal", "spiffe://cluster.local/ns/default/sa/sa-n1p1"},
      {"destination_service", "rr.default.svc.cluster.local"},
      {"destination_service_name", "rr"},
      {"request_protocol", "http"},
      {"response_code", "200"},
      {"response_flags", "-"}};
  std::string page = scrapeUntil(m.metricsPort(1), "istio_requests_total",
                                 withLabel(labels, "destination_workload", "n2p2"), 100);
  for (const char* pod : {"n1p2", "n2p1", "n2p2"}) {
    auto l = withLabel(labels, "destination_workload", pod);
    l["destination_principal"] = absl::StrCat("spiffe://cluster.local/ns/default/sa/sa-", pod);
    INFO(pod);
    CHECK(sampleValue(page, "istio_requests_total", l) == 100);
    CHECK(sampleValue(page, "istio_request_duration_milliseconds_count", l) == 100);
    CHECK(sampleValue(page, "istio_request_bytes_count", l) == 100);
    CHECK(sampleValue(page, "istio_response_bytes_sum", l) == 100 * 4);  // "n2p2" etc.
  }
  int lines = 0;
  for (const auto& j : accessLogLines(m.agentLog(1))) {
    if (j["kind"] == "request" && j["reporter"] == "source" &&
        j["destination_service"] == "rr.default.svc.cluster.local") {
      ++lines;
      CHECK(j["response_code"] == 200);
      CHECK(j["method"] == "GET");
      CHECK(j["bytes_sent"] == 4);
    }
  }
  CHECK(lines == 300);
}

TEST_CASE("routing e2e: max-connections 1 and max-pending-requests 1 answer the rest 503 at once",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startRoutedMesh(
      route("limited", "limited", "  - backendRefs:\n    - {name: limited, port: 80}\n"));
  Mesh& m = *mesh;
  // Six at once against a backend that takes 2 s: one gets the only connection, one waits for
  // it, four overflow. The waiting one goes on once the first is done.
  nlohmann::json r = httpLoad(m, "10.96.0.37", 6, 6);
  INFO(r.dump());
  std::cout << "routing e2e: 6 concurrent requests, 1 connection + 1 pending allowed: "
            << r["status"].dump() << ", ms " << r["ms"].dump() << "\n";
  CHECK(statusCount(r, "200") == 2);
  CHECK(statusCount(r, "503") == 4);
  CHECK(routeMetric(m, "ferry_route_overflows_total", "limited", 4) == 4);
  nlohmann::json seen = backendStats(m, 2, 1, 8085);
  CHECK(seen.value("GET", 0) == 2);
  CHECK(seen.value("max_active", 0) == 1);  // never two requests on the backend at once
  // Reported by the source as Envoy reports an overflow: 503 with flag UO.
  std::map<std::string, std::string> overflowed = {
      {"reporter", "source"},
      {"destination_service", "limited.default.svc.cluster.local"},
      {"response_code", "503"},
      {"response_flags", "UO"}};
  std::string page = scrapeUntil(m.metricsPort(1), "istio_requests_total", overflowed, 4);
  CHECK(sampleValue(page, "istio_requests_total", overflowed) == 4);

  // Within the limits (one at a time) nothing overflows.
  nlohmann::json serial = httpLoad(m, "10.96.0.37", 2, 1);
  INFO(serial.dump());
  CHECK(statusCount(serial, "200") == 2);
  CHECK(routeMetric(m, "ferry_route_overflows_total", "limited", 4) == 4);
}

TEST_CASE(
    "routing e2e: the request-target rules of the direct path: absolute-form authority "
    "wins over Host, no Host is 400",
    "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startRoutedMesh(splitRoute(100, 0));  // front -> v1 (n2p1:8080, http-app)
  Mesh& m = *mesh;
  auto raw = [&](const std::string& request) {
    auto out = m.run(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "http-raw",
                                   "--host=10.96.0.30", "--port=80", "--text=" + request});
    REQUIRE_OK(out);
    return *out;
  };
  // RFC 9112 3.2.2: the target's authority replaces Host, in normal form.
  std::string absolute =
      raw("GET http://V1.Example.:80/x HTTP/1.1\r\nHost: front\r\nConnection: close\r\n\r\n");
  INFO(absolute);
  CHECK(absolute.starts_with("HTTP/1.1 200 "));
  CHECK(absolute.find("X-Seen-Host: v1.example:80\r\n") != std::string::npos);
  CHECK(absolute.ends_with("n2p1"));
  std::string origin = raw("GET /x HTTP/1.1\r\nHost: Front.:\r\nConnection: close\r\n\r\n");
  CHECK(origin.find("X-Seen-Host: front\r\n") != std::string::npos);
  // No authority at all: 400 from the routing agent, HTTP/1.0 too; the backend sees nothing.
  const int64_t gets = backendStats(m, 2, 1, 8080).value("GET", 0);
  CHECK(raw("GET /x HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 400 "));
  CHECK(raw("GET /x HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 400 "));
  CHECK(backendStats(m, 2, 1, 8080).value("GET", 0) == gets);
}

TEST_CASE("routing e2e: route changes while requests are in flight fail none of them",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = startRoutedMesh(splitRoute(100, 0));
  Mesh& m = *mesh;
  // Requests the two backends (v1 = n2p1, v2 = n1p2) have served so far.
  auto served = [&] {
    return backendStats(m, 2, 1, 8080).value("GET", 0) +
           backendStats(m, 1, 2, 8080).value("GET", 0);
  };
  const int64_t before_load = served();
  nlohmann::json r;
  std::atomic<bool> client_done{false};
  std::thread client([&] {
    auto out = m.run(m.pod(1, 1),
                     {"/usr/bin/python3", meshAppsScript(), "http-load", "--host=10.96.0.30",
                      "--port=80", "--count=3000", "--connections=4"},
                     absl::Seconds(300));
    if (out.ok()) {
      r = nlohmann::json::parse(*out);
    } else {
      r = {{"error", out.status().ToString()}};
    }
    client_done = true;
  });
  CHECK(eventually([&] { return client_done || served() > before_load; }, 30s,
                   "the client's first requests to reach a backend"));
  int changes = 0;
  for (auto [w1, w2] : {std::pair{0, 100}, std::pair{50, 50}, std::pair{100, 0}, std::pair{0, 1}}) {
    CHECK_OK(m.applyManifest("route.yaml", splitRoute(w1, w2)));
    ++changes;
    // Every agent has the change; let some requests go by under it before the next one.
    const int64_t at_change = served();
    CHECK(eventually([&] { return client_done || served() >= at_change + 20; }, 30s,
                     absl::StrCat("20 requests served under weights ", w1, "/", w2)));
  }
  client.join();
  INFO(r.dump());
  std::cout << "routing e2e: " << changes << " route changes during 3000 requests: " << r["status"]
            << " in " << r["elapsed_s"] << " s\n";
  CHECK(statusCount(r, "200") == 3000);
  // Both backends served: the changes took effect while the client ran.
  CHECK(r["body"].value("n2p1", 0) > 0);
  CHECK(r["body"].value("n1p2", 0) > 0);
}

}  // namespace
}  // namespace ferry::e2e
