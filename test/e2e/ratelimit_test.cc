// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// RateLimitPolicy through real agents fed by ferry-controller (issue 21 point 1). Clients on
// node 1 offer a fixed rate to a Service on node 2 whose agent enforces the limits: HTTP from
// ferry-loadgen (open loop, a fixed number of requests at a fixed rate, counts by status), TCP
// connections from mesh_apps.py paced-load. Expected
// counts come from the bucket math, burst + rate x elapsed, with elapsed bounded by what the
// client measured (the far end's clock saw the requests between the first answer and the last
// send at least, between the first send and the last answer at most): correctness bounds, not
// timing. Metrics must count exactly what the clients saw.
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "e2e/mesh.h"
#include "e2e/observe.h"
#include "metrics/scrape.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

using metrics::testing::sampleValue;

constexpr char kHttpVip[] = "10.96.0.50";
constexpr char kTcpVip[] = "10.96.0.51";
// Per identity: 20 a second, bursts of 10; the total (100) is never the binding limit here.
constexpr int kRate = 20;
constexpr int kBurst = 10;
constexpr int kTcpRate = 5;

constexpr char kServices[] = R"(apiVersion: v1
kind: Service
metadata: {name: limited, namespace: default}
spec:
  clusterIP: 10.96.0.50
  selector: {app: n2p1}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: limited-tcp, namespace: default}
spec:
  clusterIP: 10.96.0.51
  selector: {app: n2p2}
  ports: [{name: tcp-echo, port: 90, targetPort: 9000}]
)";

constexpr char kLimits[] = R"(apiVersion: security.ferry.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: limited, namespace: default}
spec:
  targetRef: {kind: Service, name: limited, port: 80}
  total: {requestsPerSecond: 100}
  identity: {requestsPerSecond: 20, burst: 10}
---
apiVersion: security.ferry.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: limited-tcp, namespace: default}
spec:
  selector: {matchLabels: {app: n2p2}}
  ports: [9000]
  total: {requestsPerSecond: 5}
)";

// `count` HTTP requests offered at `rate` a second on one keep-alive connection (a new one
// after the agent closes it) by ferry-loadgen in the pod: {"status": {"200": n, "429": m},
// "retry_after", "retry_after_values", "span_min_s", "span_max_s", "errors", ...}, or
// {"failed": why}. No assertion here: it also runs on a second thread (checkRan after the join).
nlohmann::json offer(Mesh& m, int node, int pod, const std::string& host, int port, int count,
                     int rate) {
  auto out =
      m.run(m.pod(node, pod),
            {FERRY_LOADGEN_BIN, "run", absl::StrCat("--target=", host, ":", port, "/"),
             absl::StrCat("--rate=", rate), absl::StrCat("--requests=", count), "--connections=1"},
            absl::Seconds(120));
  if (!out.ok()) {
    return {{"failed", std::string(out.status().message())}};
  }
  nlohmann::json r = nlohmann::json::parse(*out, nullptr, /*allow_exceptions=*/false);
  return r.is_discarded() ? nlohmann::json{{"failed", *out}} : r;
}

void checkRan(const nlohmann::json& r) {
  INFO(r.dump());
  REQUIRE_FALSE(r.contains("failed"));
  CHECK(r["errors"] == 0);
}

// TCP: `count` connections offered at `rate` a second, one line echoed on each.
nlohmann::json pacedConnections(Mesh& m, int node, int pod, const std::string& host, int port,
                                int count, int rate) {
  auto out = m.run(m.pod(node, pod),
                   {"/usr/bin/python3", meshAppsScript(), "paced-load", "--host=" + host,
                    absl::StrCat("--port=", port), absl::StrCat("--count=", count),
                    absl::StrCat("--rate=", rate), "--kind=tcp"},
                   absl::Seconds(120));
  REQUIRE_OK(out);
  return nlohmann::json::parse(*out);
}

int64_t count(const nlohmann::json& r, const std::string& status) {
  return r["status"].contains(status) ? r["status"][status].get<int64_t>() : 0;
}

// What a bucket of `burst` at `rate` can have admitted over the client's measured spans, when
// it was offered more than it admits the whole time (each refill is taken by the next attempt).
void checkAdmitted(const nlohmann::json& r, int64_t admitted, int rate, int burst) {
  const double lo = burst + std::floor(rate * r["span_min_s"].get<double>()) - 1;
  const double hi = burst + std::floor(rate * r["span_max_s"].get<double>());
  INFO(r.dump() << " admitted " << admitted << ", expected [" << lo << ", " << hi << "]");
  CHECK(admitted >= lo);
  CHECK(admitted <= hi);
}

std::string principal(const harness::Pod& pod) {
  return "spiffe://cluster.local/ns/default/sa/" + Mesh::saOf(pod);
}

double metric(Mesh& m, int node, const std::string& name,
              const std::map<std::string, std::string>& labels, double at_least) {
  return sampleValue(scrapeUntil(m.metricsPort(node), name, labels, at_least), name, labels)
      .value_or(-1);
}

void startApps(Mesh& m) {
  REQUIRE_OK(
      m.startApp(m.pod(2, 1), {"http-app", "--port=8080", "--name=n2p1", "--behavior=ok"}, 8080));
  REQUIRE_OK(m.startApp(m.pod(2, 2), {"echo-server", "--port=9000"}, 9000));
  REQUIRE_OK(m.applyManifest("ratelimit-services.yaml", kServices));
  REQUIRE_OK(m.applyManifest("ratelimits.yaml", kLimits));
}

// 60 a second for 3 s from n1p1: three times its identity's limit, so every refill is taken at
// once. Counts against the bucket math, Retry-After on every 429, metrics equal to what the
// client saw.
void checkOfferedRate(Mesh& m) {
  nlohmann::json r = offer(m, 1, 1, kHttpVip, 80, 180, 60);
  checkRan(r);
  INFO(r.dump());
  const int64_t ok = count(r, "200"), limited = count(r, "429");
  CHECK(ok + limited == 180);
  checkAdmitted(r, ok, kRate, kBurst);
  CHECK(r["retry_after"].get<int64_t>() == limited);
  for (const auto& v : r["retry_after_values"]) {
    CHECK(v.get<std::string>() == "1");  // a token every 50 ms: rounded up to a second
  }
  const std::map<std::string, std::string> from = {{"reporter", "destination"},
                                                   {"source_principal", principal(m.pod(1, 1))}};
  auto with = [&](std::map<std::string, std::string> extra) {
    extra.insert(from.begin(), from.end());
    return extra;
  };
  CHECK(metric(m, 2, "istio_requests_total",
               with({{"response_code", "429"}, {"response_flags", "RL"}}), limited) == limited);
  CHECK(metric(m, 2, "istio_requests_total", with({{"response_code", "200"}}), ok) == ok);
  CHECK(metric(m, 2, "ferry_rate_limited_total",
               {{"policy", "default/limited"}, {"kind", "request"}}, limited) == limited);
}

TEST_CASE(
    "rate limit e2e: 200s and 429s match the bucket math with Retry-After and exact metrics, a "
    "flooding identity leaves another's rate alone, TCP connections are limited per second",
    "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start(MeshOptions{});
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  startApps(m);

  SECTION("HTTP: a fixed offered rate above the identity limit") {
    checkOfferedRate(m);
  }

  SECTION("HTTP: a flooding identity does not reduce another identity's rate") {
    nlohmann::json flood, quiet;
    // The flooder offers 200 a second for 3 s; the quiet client 15 a second (under its 20)
    // for the same 3 s, from another ServiceAccount.
    std::thread flooder([&] { flood = offer(m, 1, 1, kHttpVip, 80, 600, 200); });
    quiet = offer(m, 1, 2, kHttpVip, 80, 45, 15);
    flooder.join();
    checkRan(flood);
    checkRan(quiet);
    INFO("flood " << flood.dump() << "\nquiet " << quiet.dump());
    CHECK(count(quiet, "200") == 45);
    CHECK(count(flood, "200") + count(flood, "429") == 600);
    checkAdmitted(flood, count(flood, "200"), kRate, kBurst);
  }

  SECTION("TCP: new connections per second") {
    // 20 connections a second for 2 s against 5 a second (burst 5).
    nlohmann::json r = pacedConnections(m, 1, 1, kTcpVip, 90, 40, 20);
    INFO(r.dump());
    const int64_t allowed = count(r, "allow"), refused = count(r, "refused");
    CHECK(allowed + refused == 40);
    checkAdmitted(r, allowed, kTcpRate, kTcpRate);
    CHECK(metric(m, 2, "ferry_rate_limited_total",
                 {{"policy", "default/limited-tcp"}, {"kind", "connection"}}, refused) == refused);
    CHECK(m.stat(2, "tcp_connections_rate_limited") == refused);
  }
}

TEST_CASE("rate limit e2e: manifest mode (agents read the folder) enforces the same limits",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  MeshOptions options;
  options.controller = false;
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  startApps(m);
  checkOfferedRate(m);
}

}  // namespace
}  // namespace ferry::e2e
