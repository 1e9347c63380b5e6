// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Gateway API filters through real agents fed by ferry-controller (issue 22 point 2), with curl
// as the client: RequestRedirect (status and Location), URLRewrite (the path and Host the
// backend saw), ResponseHeaderModifier (what curl got), and per-backend filters applied only
// for their backend. The client n1p1 calls Service front (VIP 10.96.0.30:80); front is n2p1 and
// front-v2 is n2p2, both http-apps that echo the request they received.
#include <catch2/catch.hpp>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "e2e/http_apps.h"
#include "e2e/mesh.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

constexpr char kFrontVip[] = "10.96.0.30";

std::string service(const std::string& name, const std::string& vip, int target_port,
                    const std::string& app) {
  return absl::StrCat("apiVersion: v1\nkind: Service\nmetadata:\n  name: ", name,
                      "\n  namespace: default\nspec:\n  clusterIP: ", vip,
                      "\n  ports:\n  - name: http\n    port: 80\n    targetPort: ", target_port,
                      "\n  selector:\n    app: ", app, "\n");
}

struct Response {
  int status = 0;
  std::multimap<std::string, std::string> headers;  // lower-case names
  std::string body;

  std::vector<std::string> all(const std::string& name) const {
    std::vector<std::string> out;
    auto [from, to] = headers.equal_range(name);
    for (auto it = from; it != to; ++it) {
      out.push_back(it->second);
    }
    return out;
  }
};

// One GET by curl from n1p1 (no redirect following), its status line, fields and body.
Response curlGet(Mesh& m, const std::string& path) {
  const std::string url = absl::StrCat("http://", kFrontVip, path);
  auto out = m.run(m.pod(1, 1), {"/usr/bin/curl", "-sS", "-i", "--max-time", "20", url});
  INFO("curl " << url);
  REQUIRE_OK(out);
  Response r;
  const size_t end = out->find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  r.body = out->substr(end + 4);
  std::vector<std::string> lines = absl::StrSplit(out->substr(0, end), "\r\n");
  std::vector<std::string> status = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  REQUIRE(status.size() >= 2);
  REQUIRE(absl::SimpleAtoi(status[1], &r.status));
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> kv = absl::StrSplit(lines[i], absl::MaxSplits(':', 1));
    REQUIRE(kv.size() == 2);
    r.headers.emplace(absl::AsciiStrToLower(kv[0]), std::string(absl::StripAsciiWhitespace(kv[1])));
  }
  return r;
}

std::string readFile(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  REQUIRE_FALSE(text.str().empty());
  return text.str();
}

TEST_CASE(
    "filters e2e: redirects answered by the source agent, rewritten path and Host at the "
    "backend, response fields edited, per-backend filters only for their backend",
    "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  auto mesh = Mesh::start(MeshOptions{});
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE_OK(
      m.startApp(m.pod(2, 1), {"http-app", "--port=8080", "--name=v1", "--behavior=echo"}, 8080));
  REQUIRE_OK(
      m.startApp(m.pod(2, 2), {"http-app", "--port=8081", "--name=v2", "--behavior=echo"}, 8081));
  REQUIRE_OK(m.applyManifest("services.yaml",
                             absl::StrCat(service("front", kFrontVip, 8080, "n2p1"), "---\n",
                                          service("front-v2", "10.96.0.31", 8081, "n2p2"))));
  REQUIRE_OK(m.applyManifest("route.yaml", readFile(FERRY_FILTERS_ROUTE)));

  SECTION("RequestRedirect") {
    Response moved = curlGet(m, "/old/lemon?q=1");
    CHECK(moved.status == 301);
    CHECK(moved.all("location") == std::vector<std::string>{"http://example.org/new/lemon?q=1"});
    CHECK(moved.body.empty());
    Response secure = curlGet(m, "/secure/x");
    CHECK(secure.status == 302);
    CHECK(secure.all("location") == std::vector<std::string>{"https://10.96.0.30/secure/x"});
    std::cout << "filters e2e: GET /old/lemon?q=1 -> " << moved.status << " "
              << moved.all("location")[0] << "; GET /secure/x -> " << secure.status << " "
              << secure.all("location")[0] << "\n";
    // Answered by the source agent: the backends never saw these requests.
    nlohmann::json stats = backendStats(m, 2, 1, 8080);
    CHECK(stats.value("GET", 0) == 0);
  }

  SECTION("URLRewrite and ResponseHeaderModifier") {
    Response r = curlGet(m, "/prefix/one/two?a=b");
    REQUIRE(r.status == 200);
    nlohmann::json seen = nlohmann::json::parse(r.body);
    INFO(r.body);
    CHECK(seen["name"] == "v1");
    CHECK(seen["path"] == "/one/two?a=b");
    CHECK(seen["host"] == "rewritten.example");
    CHECK(r.all("x-header-set") == std::vector<std::string>{"set-overwrites-values"});
    CHECK(r.all("x-header-add") == std::vector<std::string>{"from-v1", "header-val-1"});
    CHECK(r.all("x-header-remove").empty());
    std::cout << "filters e2e: GET /prefix/one/two?a=b -> backend saw " << seen["path"] << " Host "
              << seen["host"] << "; response x-header-set " << r.all("x-header-set")[0] << "\n";
    // The same backend through a rule without these filters (/split: asked until v1 answers,
    // bounded): what it sends unedited.
    Response plain = curlGet(m, "/split/plain");
    for (int i = 0; i < 40 && plain.all("x-served-by").empty(); ++i) {
      plain = curlGet(m, "/split/plain");
    }
    REQUIRE(plain.all("x-served-by") == std::vector<std::string>{"v1-filter"});
    CHECK(plain.all("x-header-set") == std::vector<std::string>{"from-v1"});
    CHECK(plain.all("x-header-remove") == std::vector<std::string>{"from-v1"});
  }

  SECTION("per-backend filters") {
    constexpr int kRequests = 30;
    std::map<std::string, int> by_backend;
    for (int i = 0; i < kRequests; ++i) {
      Response r = curlGet(m, absl::StrCat("/split/", i));
      REQUIRE(r.status == 200);
      nlohmann::json seen = nlohmann::json::parse(r.body);
      INFO(r.body);
      const std::string name = seen["name"];
      ++by_backend[name];
      if (name == "v1") {
        CHECK(seen["path"] == absl::StrCat("/split/", i));
        CHECK(seen["headers"].value("x-backend", "") == "v1");
        CHECK(r.all("x-served-by") == std::vector<std::string>{"v1-filter"});
      } else {
        CHECK(name == "v2");
        CHECK(seen["path"] == "/v2-only");
        CHECK_FALSE(seen["headers"].contains("x-backend"));
        CHECK(r.all("x-served-by").empty());
      }
    }
    std::cout << "filters e2e: " << kRequests << " GET /split/N: v1 " << by_backend["v1"]
              << " (path kept, x-backend: v1, x-served-by: v1-filter), v2 " << by_backend["v2"]
              << " (path /v2-only, neither field)\n";
    // 50/50 split: both backends answer (all 30 on one side has probability 2^-29).
    CHECK(by_backend["v1"] > 0);
    CHECK(by_backend["v2"] > 0);
    CHECK(by_backend["v1"] + by_backend["v2"] == kRequests);
  }
}

}  // namespace
}  // namespace ferry::e2e
