// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// A real Prometheus server (Debian's `prometheus`) scrapes the exporter on loopback, and a
// PromQL query through its HTTP API returns the request count we produced.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "eventually.h"
#include "metrics/exporter.h"
#include "scrape.h"
#include "status_testing.h"

namespace ferry::metrics {
namespace {

int freeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST_CASE("Prometheus scrapes the exporter and PromQL returns the request count",
          "[metrics][prometheus]") {
  auto exporter = Exporter::start("127.0.0.1:0");
  REQUIRE_OK(exporter);
  ConnectionLabels labels;
  labels.destination.workload = "web";
  labels.destination_service = "web.demo.svc.cluster.local";
  for (int i = 0; i < 10; ++i) {
    (*exporter)->istio().recordRequest(labels, {.response_code = 200});
  }
  (*exporter)->istio().recordRequest(labels, {.response_code = 403});

  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / absl::StrCat("ferry-prom-", ::getpid());
  fs::create_directories(dir / "data");
  std::ofstream(dir / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "scrape_configs:\n  - job_name: ferry-agent\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << (*exporter)->port() << "']\n";
  int web_port = freeLoopbackPort();
  auto prometheus = harness::spawnProcess(
      {},
      {"prometheus", absl::StrCat("--config.file=", (dir / "prometheus.yml").string()),
       absl::StrCat("--storage.tsdb.path=", (dir / "data").string()),
       absl::StrCat("--web.listen-address=127.0.0.1:", web_port)},
      (dir / "prometheus.log").string());
  REQUIRE_OK(prometheus);

  const std::string query =
      absl::StrCat("http://127.0.0.1:", web_port,
                   "/api/v1/query?query=sum(istio_requests_total%7Bresponse_code%3D%22200%22%7D)");
  std::string value;
  const bool answered = ferry::testing::eventually(
      [&] {
        nlohmann::json reply = nlohmann::json::parse(testing::httpGet(query), nullptr, false);
        if (reply.is_discarded() || reply.value("status", "") != "success" ||
            reply["data"]["result"].empty()) {
          return false;
        }
        value = reply["data"]["result"][0]["value"][1].get<std::string>();
        return true;
      },
      std::chrono::seconds(30), "a PromQL answer after a scrape", std::chrono::milliseconds(500));
  INFO("prometheus log: " << (*prometheus)->log());
  CHECK(answered);
  CHECK(value == "10");
  prometheus->reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ferry::metrics
