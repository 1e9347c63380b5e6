// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "e2e/observe.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "e2e/mesh.h"
#include "metrics/scrape.h"
#include "poll_until.h"

namespace ferry::e2e {
namespace fs = std::filesystem;
namespace {

std::string urlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

}  // namespace

std::string scrapeUntil(uint16_t port, const std::string& name,
                        const std::map<std::string, std::string>& labels, double value) {
  std::string url = absl::StrCat("http://127.0.0.1:", port, "/metrics");
  std::string text;
  // Bounded (10 s); the caller checks the value in what is returned.
  static_cast<void>(testing::pollUntil(
      [&] {
        text = metrics::testing::httpGet(url);
        auto v = metrics::testing::sampleValue(text, name, labels);
        return v && *v >= value;
      },
      std::chrono::seconds(10), std::chrono::milliseconds(100)));
  return text;
}

double bpfEvent(uint16_t port, const std::string& event) {
  std::string text = metrics::testing::httpGet(absl::StrCat("http://127.0.0.1:", port, "/metrics"));
  return metrics::testing::sampleValue(text, "ferry_bpf_events_total", {{"event", event}})
      .value_or(-1);
}

std::vector<nlohmann::json> accessLogLines(const std::string& output) {
  std::vector<nlohmann::json> out;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    if (line.empty() || line.front() != '{') {
      continue;
    }
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("kind")) {
      out.push_back(std::move(j));
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Prometheus>> Prometheus::start(const std::string& scratch_dir,
                                                              uint16_t target_port) {
  return start(scratch_dir, std::vector<uint16_t>{target_port});
}

absl::StatusOr<std::unique_ptr<Prometheus>> Prometheus::start(
    const std::string& scratch_dir, const std::vector<uint16_t>& target_ports) {
  std::unique_ptr<Prometheus> p(new Prometheus());
  p->dir_ = absl::StrCat(scratch_dir, "/prometheus-", target_ports.at(0));
  fs::create_directories(p->dir_ + "/data");
  std::string targets;
  for (uint16_t port : target_ports) {
    absl::StrAppend(&targets, targets.empty() ? "" : ", ", "'127.0.0.1:", port, "'");
  }
  std::ofstream(p->dir_ + "/prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "scrape_configs:\n  - job_name: ferry-agent\n    static_configs:\n"
      << "      - targets: [" << targets << "]\n";
  p->port_ = freeLoopbackPort();
  auto process =
      harness::spawnProcess({},
                            {"prometheus", "--config.file=" + p->dir_ + "/prometheus.yml",
                             "--storage.tsdb.path=" + p->dir_ + "/data",
                             absl::StrCat("--web.listen-address=127.0.0.1:", p->port_)},
                            p->dir_ + "/prometheus.log");
  if (!process.ok()) {
    return process.status();
  }
  p->process_ = *std::move(process);
  return p;
}

Prometheus::~Prometheus() {
  process_.reset();
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

std::string Prometheus::url() const {
  return absl::StrCat("http://127.0.0.1:", port_);
}

std::string Prometheus::queryScalar(const std::string& promql) {
  std::string url =
      absl::StrCat("http://127.0.0.1:", port_, "/api/v1/query?query=", urlEncode(promql));
  // Bounded (30 s): Prometheus may be starting, or not have scraped the series yet.
  std::string value;
  static_cast<void>(testing::pollUntil(
      [&] {
        auto reply = nlohmann::json::parse(metrics::testing::httpGet(url), nullptr, false);
        if (reply.is_discarded() || reply.value("status", "") != "success" ||
            reply["data"]["result"].empty()) {
          return false;
        }
        value = reply["data"]["result"][0]["value"][1].get<std::string>();
        return true;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(500)));
  return value;  // "" when no answer came
}

}  // namespace ferry::e2e
