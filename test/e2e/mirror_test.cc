// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// HTTPRoute RequestMirror through real agents fed by ferry-controller (issue 21 point 3). The
// client n1p1 calls Service front (n2p1:8080); the route mirrors to Service shadow (n1p2:8090),
// whose app counts what it receives by Host. Assertions are on answers and counts, never on
// time.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
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
using namespace std::chrono_literals;

using metrics::testing::sampleValue;

constexpr char kFrontVip[] = "10.96.0.30";
// http.client omits the default port: the Host the client sends, and the one the mirror gets.
constexpr char kPrimaryHost[] = "10.96.0.30";
constexpr char kShadowHost[] = "10.96.0.30-shadow";

std::string exampleRoute() {
  std::ifstream in(FERRY_MIRROR_ROUTE);
  std::stringstream text;
  text << in.rdbuf();
  REQUIRE(text.str().find("percent: 100") != std::string::npos);
  return text.str();
}

// `text` with its one occurrence of `from` replaced by `to`.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  REQUIRE(text.find(from, at + 1) == std::string::npos);
  return text.replace(at, from.size(), to);
}

std::string service(const std::string& name, const std::string& vip, int target_port,
                    const std::string& app) {
  return absl::StrCat("apiVersion: v1\nkind: Service\nmetadata:\n  name: ", name,
                      "\n  namespace: default\nspec:\n  clusterIP: ", vip,
                      "\n  ports:\n  - name: http\n    port: 80\n    targetPort: ", target_port,
                      "\n  selector:\n    app: ", app, "\n");
}

int64_t hostCount(const nlohmann::json& stats, const std::string& host) {
  return stats["hosts"].value(host, int64_t{0});
}

// A mirror gets its copies after the client has its answers: waits (bounded, 30 s) until the
// http-app has `at_least` requests in all, then returns what it saw.
nlohmann::json waitBackendStats(Mesh& m, int node, int pod, uint16_t port, int64_t at_least) {
  nlohmann::json seen;
  static_cast<void>(eventually(  // the caller checks the counts in what is returned
      [&] {
        seen = backendStats(m, node, pod, port);
        return seen.value("GET", int64_t{0}) + seen.value("POST", int64_t{0}) >= at_least;
      },
      30s, absl::StrCat(at_least, " requests at the backend on port ", port), 100ms));
  return seen;
}

const std::map<std::string, std::string> kRoute = {{"route", "front-mirror"},
                                                   {"namespace", "default"}};

std::map<std::string, std::string> dropped(const std::string& reason) {
  auto labels = kRoute;
  labels["reason"] = reason;
  return labels;
}

double metric(Mesh& m, const std::string& name, const std::map<std::string, std::string>& labels,
              double at_least) {
  return sampleValue(scrapeUntil(m.metricsPort(1), name, labels, at_least), name, labels)
      .value_or(-1);
}

TEST_CASE(
    "mirror e2e: copies at 100% and 50% counted exactly at the mirror with -shadow Host, "
    "a big body is not mirrored, a down or hanging mirror changes no answer",
    "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start(MeshOptions{});
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE_OK(
      m.startApp(m.pod(2, 1), {"http-app", "--port=8080", "--name=n2p1", "--behavior=ok"}, 8080));
  REQUIRE_OK(
      m.startApp(m.pod(1, 2), {"http-app", "--port=8090", "--name=shadow", "--behavior=ok"}, 8090));
  REQUIRE_OK(
      m.startApp(m.pod(2, 2), {"http-app", "--port=8092", "--name=hang", "--behavior=hang"}, 8092));
  // down: n2p2:8091, where nothing listens (connections are refused).
  REQUIRE_OK(m.applyManifest("services.yaml",
                             absl::StrCat(service("front", kFrontVip, 8080, "n2p1"), "---\n",
                                          service("shadow", "10.96.0.40", 8090, "n1p2"), "---\n",
                                          service("down", "10.96.0.41", 8091, "n2p2"), "---\n",
                                          service("hang", "10.96.0.42", 8092, "n2p2"))));
  const std::string route = exampleRoute();
  REQUIRE_OK(m.applyManifest("route.yaml", route));

  constexpr int kRequests = 200;
  // 100%: every request, GET and POST (body included), once, with the -shadow Host.
  nlohmann::json r = httpLoad(m, kFrontVip, kRequests, 4);
  INFO(r.dump());
  CHECK(statusCount(r, "200") == kRequests);
  nlohmann::json posts = httpLoad(m, kFrontVip, 20, 2, "POST");
  INFO(posts.dump());
  CHECK(statusCount(posts, "200") == 20);
  nlohmann::json seen = waitBackendStats(m, 1, 2, 8090, kRequests + 20);
  INFO(seen.dump());
  std::cout << "mirror e2e: 100%: primary " << r["status"].dump() << ", mirror saw "
            << seen["hosts"].dump() << "\n";
  CHECK(seen.value("GET", 0) == kRequests);
  CHECK(seen.value("POST", 0) == 20);
  CHECK(hostCount(seen, kShadowHost) == kRequests + 20);
  CHECK(seen["hosts"].size() == 1);
  nlohmann::json primary = backendStats(m, 2, 1, 8080);
  CHECK(primary.value("GET", 0) == kRequests);
  CHECK(hostCount(primary, kPrimaryHost) == kRequests + 20);
  CHECK(metric(m, "ferry_route_mirrors_total", kRoute, kRequests + 20) == kRequests + 20);
  CHECK(metric(m, "ferry_route_mirror_errors_total", kRoute, 0) == 0);

  // A body over the bound (64 KiB) streams to the primary and is not mirrored: counted.
  auto big = m.run(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "http-post",
                                 absl::StrCat("--host=", kFrontVip), "--port=80", "--text=/big",
                                 "--bytes=100000"});
  REQUIRE_OK(big);
  INFO(*big);
  CHECK(big->starts_with("200 "));
  CHECK(metric(m, "ferry_route_mirrors_dropped_total", dropped("body_too_large"), 1) == 1);
  CHECK(backendStats(m, 2, 1, 8080).value("POST", 0) == 21);
  CHECK(metric(m, "ferry_route_mirrors_total", kRoute, kRequests + 20) == kRequests + 20);

  // 50% as a fraction: exactly every second request.
  REQUIRE_OK(m.applyManifest(
      "route.yaml", replaced(route, "percent: 100", "fraction: {numerator: 1, denominator: 2}")));
  nlohmann::json half = httpLoad(m, kFrontVip, kRequests, 4);
  INFO(half.dump());
  CHECK(statusCount(half, "200") == kRequests);
  seen = waitBackendStats(m, 1, 2, 8090, kRequests + 20 + kRequests / 2);
  std::cout << "mirror e2e: 50%: primary " << half["status"].dump() << ", mirror saw "
            << seen["hosts"].dump() << "\n";
  CHECK(seen.value("GET", 0) == kRequests + kRequests / 2);
  CHECK(hostCount(seen, kShadowHost) == kRequests + 20 + kRequests / 2);
  CHECK(metric(m, "ferry_route_mirrors_total", kRoute, kRequests + 20 + kRequests / 2) ==
        kRequests + 20 + kRequests / 2);

  // A mirror that refuses every connection, then one that never answers: the client's answers
  // are the same, and the copies were sent (none waited for).
  for (const char* mirror : {"down", "hang"}) {
    INFO(mirror);
    const double sent_before = metric(m, "ferry_route_mirrors_total", kRoute, 0);
    const double unavailable_before =
        metric(m, "ferry_route_mirrors_dropped_total", dropped("no_healthy_upstream"), 0);
    std::string changed = replaced(route, "name: shadow", "name: " + std::string(mirror));
    if (std::string(mirror) == "hang") {
      // Copies time out with their rule's request timeout: long enough to outlast the test.
      changed =
          replaced(changed, "  - backendRefs:", "  - timeouts: {request: 600s}\n    backendRefs:");
    }
    REQUIRE_OK(m.applyManifest("route.yaml", changed));
    nlohmann::json out = httpLoad(m, kFrontVip, kRequests, 4);
    INFO(out.dump());
    std::cout << "mirror e2e: mirror " << mirror << ": primary " << out["status"].dump()
              << ", bodies " << out["body"].dump() << "\n";
    CHECK(statusCount(out, "200") == kRequests);
    CHECK(out["body"].value("n2p1", 0) == kRequests);
    CHECK(out["errors"].empty());
    const double sent = metric(m, "ferry_route_mirrors_total", kRoute, 0) - sent_before;
    const double unavailable =
        metric(m, "ferry_route_mirrors_dropped_total", dropped("no_healthy_upstream"), 0) -
        unavailable_before;
    std::cout << "mirror e2e: mirror " << mirror << ": " << sent << " copies sent, " << unavailable
              << " dropped (no healthy upstream)\n";
    // Every request was mirrored or (once outlier detection ejected the refusing endpoint)
    // dropped for want of an endpoint; a hanging mirror is never ejected and gets them all.
    CHECK(sent + unavailable == kRequests);
    if (std::string(mirror) == "hang") {
      CHECK(sent == kRequests);
      nlohmann::json hung = waitBackendStats(m, 2, 2, 8092, kRequests);
      CHECK(hung.value("GET", 0) == kRequests);
      CHECK(hostCount(hung, kShadowHost) == kRequests);
    } else {
      CHECK(sent >= 1);
      // Refused copies are counted as errors (after the client had its answers: waited for).
      CHECK(metric(m, "ferry_route_mirror_errors_total", kRoute, sent) == sent);
    }
  }
  // The first mirror saw nothing more.
  CHECK(backendStats(m, 1, 2, 8090).value("GET", 0) == kRequests + kRequests / 2);

  // Bounded: the hanging mirror holds kRequests copies; the agent keeps at most 256 in flight
  // (kMaxMirrorsInFlight, agent/http/http_mirror.h), so of 100 more exactly 56 are sent and 44
  // dropped, and the client's answers do not change.
  const double sent_before = metric(m, "ferry_route_mirrors_total", kRoute, 0);
  const double overload_before =
      metric(m, "ferry_route_mirrors_dropped_total", dropped("overload"), 0);
  CHECK(overload_before == 0);
  nlohmann::json more = httpLoad(m, kFrontVip, 100, 4);
  INFO(more.dump());
  CHECK(statusCount(more, "200") == 100);
  const double sent = metric(m, "ferry_route_mirrors_total", kRoute, 0) - sent_before;
  const double overload =
      metric(m, "ferry_route_mirrors_dropped_total", dropped("overload"), 44) - overload_before;
  std::cout << "mirror e2e: " << kRequests << " copies hanging, 100 more requests: " << sent
            << " copies sent, " << overload << " dropped (overload)\n";
  CHECK(sent == 256 - kRequests);
  CHECK(overload == 100 - (256 - kRequests));
}

}  // namespace
}  // namespace ferry::e2e
