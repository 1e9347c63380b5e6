// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "cli/stat.h"

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cli/admin.h"
#include "cli/table.h"

namespace ferry::cli {
namespace {

using nlohmann::json;

absl::StatusOr<Scrape> scrapeAgents(const std::vector<std::string>& agents) {
  Scrape scrape;
  for (const std::string& agent : agents) {
    auto body = httpGetBody(agent, "/metrics", "--agents",
                            "no agent metrics endpoint at " + agent +
                                " (is ferry-agent running? --agents sets the addresses)");
    if (!body.ok()) {
      return body.status();
    }
    auto samples = parsePromText(*body);
    if (!samples.ok()) {
      return absl::DataLossError(absl::StrCat(agent, ": ", samples.status().message()));
    }
    scrape.by_agent[agent] = *std::move(samples);
  }
  return scrape;
}

struct PrometheusUrl {
  std::string address;  // IPv4:PORT
  std::string prefix;   // "" or "/path"
};

std::optional<PrometheusUrl> parsePrometheusUrl(std::string url) {
  if (!url.starts_with("http://")) {
    return std::nullopt;
  }
  url = url.substr(7);
  PrometheusUrl out;
  size_t slash = url.find('/');
  out.address = url.substr(0, slash);
  out.prefix = slash == std::string::npos ? "" : url.substr(slash);
  while (out.prefix.ends_with('/')) {
    out.prefix.pop_back();
  }
  if (out.address.starts_with("localhost:")) {
    out.address = "127.0.0.1" + out.address.substr(9);
  }
  size_t colon = out.address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return std::nullopt;
  }
  return out;
}

std::string urlEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

// row key -> value, from an instant query's vector.
using Column = std::map<std::pair<std::string, std::string>, double>;

absl::StatusOr<Column> query(const PrometheusUrl& url, const std::string& promql, StatBy by) {
  auto body =
      httpGetBody(url.address, url.prefix + "/api/v1/query?query=" + urlEncode(promql),
                  "--prometheus", "no Prometheus answers at " + url.address + " (--prometheus)");
  if (!body.ok()) {
    return body.status();
  }
  json reply = json::parse(*body, nullptr, false);
  if (reply.is_discarded() || reply.value("status", "") != "success") {
    return absl::UnavailableError(absl::StrCat(
        "Prometheus did not answer '", promql,
        "': ", reply.is_discarded() ? body->substr(0, 200) : reply.value("error", reply.dump())));
  }
  const auto [ns_label, name_label] = rowLabels(by);
  Column out;
  for (const auto& r : reply["data"].value("result", json::array())) {
    const json& metric = r.value("metric", json::object());
    double v = 0;
    std::string text = r["value"][1].get<std::string>();
    if (!absl::SimpleAtod(text, &v)) {
      continue;
    }
    out[{metric.value(ns_label, "unknown"), metric.value(name_label, "unknown")}] = v;
  }
  return out;
}

absl::StatusOr<std::vector<StatRow>> prometheusRows(const PrometheusUrl& url,
                                                    const StatArgs& args) {
  StatQueries q = statQueries(args.options, args.window);
  std::map<std::pair<std::string, std::string>, StatRow> rows;
  auto fill = [&](const std::string& promql, auto set) -> absl::Status {
    auto column = query(url, promql, args.options.by);
    if (!column.ok()) {
      return column.status();
    }
    for (const auto& [key, v] : *column) {
      StatRow& row = rows[key];
      row.ns = key.first;
      row.name = key.second;
      set(row, v);
    }
    return absl::OkStatus();
  };
  auto quantile = [](double v) { return std::isnan(v) ? std::nullopt : std::optional<double>(v); };
  for (auto s : {fill(q.requests, [](StatRow&r, double v) { r.requests = v; }),
                 fill(q.failures, [](StatRow&r, double v) { r.failures = v; }),
                 fill(q.p50, [&](StatRow&r, double v) { r.p50 = quantile(v); }),
                 fill(q.p95, [&](StatRow&r, double v) { r.p95 = quantile(v); }),
                 fill(q.p99, [&](StatRow&r, double v) { r.p99 = quantile(v); }),
                 fill(q.tcp_opened, [](StatRow&r, double v) { r.tcp_opened = v; }),
                 fill(q.tcp_open, [](StatRow&r, double v) { r.tcp_open = v; })}) {
    if (!s.ok()) {
      return s;
    }
  }
  std::vector<StatRow> out;
  for (auto& [key, row] : rows) {
    row.seconds = absl::ToDoubleSeconds(args.window);
    out.push_back(std::move(row));
  }
  return out;
}

json optionalNumber(const std::optional<double>& v) {
  return v ? json(*v) : json(nullptr);
}

std::string percent(const std::optional<double>& v) {
  return v ? absl::StrFormat("%.2f%%", *v * 100) : "";
}

std::string millis(const std::optional<double>& v) {
  return v ? absl::StrFormat("%.1fms", *v) : "";
}

void printFrame(const std::vector<StatRow>& rows, const StatArgs& args, std::ostream& out) {
  if (args.json) {
    out << (args.watch ? statJson(rows, args).dump() : statJson(rows, args).dump(2)) << "\n";
  } else {
    if (args.watch && ::isatty(STDOUT_FILENO)) {
      out << "\033[H\033[2J";  // like top: each frame on a clean screen
    }
    out << statTable(rows, args.options.by);
  }
  out.flush();
}

}  // namespace

std::optional<std::string> validateStatArgs(const StatArgs& args) {
  for (char c : args.options.ns) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return "--namespace must be a Kubernetes name (a-z, 0-9, '-'), not '" + args.options.ns + "'";
    }
  }
  if (args.window < absl::Seconds(1)) {
    return "--window must be at least 1s, not " + absl::FormatDuration(args.window);
  }
  if (args.options.reporter != "destination" && args.options.reporter != "source") {
    return "--reporter must be destination or source, not '" + args.options.reporter + "'";
  }
  if (args.prometheus && !args.agents.empty()) {
    return "--prometheus and --agents are two sources: give one";
  }
  if (args.prometheus && !parsePrometheusUrl(*args.prometheus)) {
    return "--prometheus must be http://HOST:PORT[/prefix], not '" + *args.prometheus + "'";
  }
  if (args.count < 0 || (args.count > 0 && !args.watch)) {
    return "--count N (N >= 1) bounds the frames of --watch";
  }
  return std::nullopt;
}

StatQueries statQueries(const StatOptions& options, absl::Duration window) {
  const auto [ns_label, name_label] = rowLabels(options.by);
  std::string sel = absl::StrCat("reporter=\"", options.reporter, "\"");
  if (!options.ns.empty()) {
    absl::StrAppend(&sel, ",", ns_label, "=\"", options.ns, "\"");
  }
  const std::string range = absl::StrCat("[", absl::ToInt64Milliseconds(window), "ms]");
  const std::string by = absl::StrCat(" by (", ns_label, ", ", name_label, ") ");
  auto increase = [&](const std::string& metric, const std::string& extra = "") {
    return absl::StrCat("sum", by, "(increase(", metric, "{", sel, extra, "}", range, "))");
  };
  auto quantile = [&](const char* q) {
    return absl::StrCat("histogram_quantile(", q, ", sum by (", ns_label, ", ", name_label,
                        ", le) (increase(istio_request_duration_milliseconds_bucket{", sel, "}",
                        range, ")))");
  };
  auto total = [&](const std::string& metric) {
    return absl::StrCat("sum", by, "(", metric, "{", sel, "})");
  };
  return StatQueries{
      .requests = increase("istio_requests_total"),
      .failures = increase("istio_requests_total", ",response_code=~\"5..|0\""),
      .p50 = quantile("0.5"),
      .p95 = quantile("0.95"),
      .p99 = quantile("0.99"),
      .tcp_opened = increase("istio_tcp_connections_opened_total"),
      // A group whose connections never closed has no closed series: count it as 0.
      .tcp_open = absl::StrCat(total("istio_tcp_connections_opened_total"), " - (",
                               total("istio_tcp_connections_closed_total"), " or 0 * ",
                               total("istio_tcp_connections_opened_total"), ")"),
  };
}

json statJson(const std::vector<StatRow>& rows, const StatArgs& args) {
  json out_rows = json::array();
  for (const StatRow& r : rows) {
    out_rows.push_back({{"namespace", r.ns},
                        {"name", r.name},
                        {"requests", r.requests},
                        {"failures", r.failures},
                        {"rps", r.rps()},
                        {"success_rate", optionalNumber(r.successRate())},
                        {"latency_ms",
                         {{"p50", optionalNumber(r.p50)},
                          {"p95", optionalNumber(r.p95)},
                          {"p99", optionalNumber(r.p99)}}},
                        {"tcp", {{"opened", r.tcp_opened}, {"open", r.tcp_open}}}});
  }
  return {{"by", args.options.by == StatBy::kWorkload ? "workload" : "service"},
          {"reporter", args.options.reporter},
          {"source", args.prometheus ? "prometheus" : "agents"},
          {"window_seconds", rows.empty() ? absl::ToDoubleSeconds(args.window) : rows[0].seconds},
          {"rows", out_rows}};
}

std::string statTable(const std::vector<StatRow>& rows, StatBy by) {
  std::vector<std::vector<std::string>> cells;
  for (const StatRow& r : rows) {
    cells.push_back({r.ns, r.name, absl::StrFormat("%.2f", r.rps()), percent(r.successRate()),
                     millis(r.p50), millis(r.p95), millis(r.p99),
                     absl::StrFormat("%.0f", r.tcp_open), absl::StrFormat("%.0f", r.tcp_opened)});
  }
  return renderTable({"NAMESPACE", by == StatBy::kWorkload ? "WORKLOAD" : "SERVICE", "RPS",
                      "SUCCESS", "P50", "P95", "P99", "TCP OPEN", "TCP OPENED"},
                     cells);
}

int runStat(const StatArgs& args, std::ostream& out, std::ostream& err) {
  if (args.prometheus) {
    PrometheusUrl url = *parsePrometheusUrl(*args.prometheus);
    for (int frame = 1;; ++frame) {
      auto rows = prometheusRows(url, args);
      if (!rows.ok()) {
        err << "ferryctl: " << rows.status().message() << "\n";
        return 1;
      }
      printFrame(*rows, args, out);
      if (!args.watch || frame == args.count) {
        return 0;
      }
      absl::SleepFor(args.window);
    }
  }
  const std::vector<std::string> agents =
      args.agents.empty() ? std::vector<std::string>{kDefaultMetrics} : args.agents;
  auto before = scrapeAgents(agents);
  if (!before.ok()) {
    err << "ferryctl: " << before.status().message() << "\n";
    return 1;
  }
  absl::Time then = absl::Now();
  err << "ferryctl: sampling " << agents.size() << " agent(s) every "
      << absl::FormatDuration(args.window) << "\n";
  err.flush();
  for (int frame = 1;; ++frame) {
    absl::SleepFor(args.window);
    auto after = scrapeAgents(agents);
    absl::Time now = absl::Now();
    if (!after.ok()) {
      err << "ferryctl: " << after.status().message() << "\n";
      return 1;
    }
    printFrame(statRows(*before, *after, absl::ToDoubleSeconds(now - then), args.options), args,
               out);
    if (!args.watch || frame == args.count) {
      return 0;
    }
    before = std::move(after);
    then = now;
  }
}

}  // namespace ferry::cli
