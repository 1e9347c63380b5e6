// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "cli/stat_math.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ferry::cli {
namespace {

absl::Status badLine(size_t number, absl::string_view line, absl::string_view why) {
  return absl::DataLossError(
      absl::StrCat("metrics line ", number, ": ", why, ": '", line.substr(0, 120), "'"));
}

bool parseValue(absl::string_view text, double& out) {
  if (text == "+Inf" || text == "Inf") {
    out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "-Inf") {
    out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "NaN") {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  return absl::SimpleAtod(text, &out);
}

// Parses `{a="x",b="y"}` at the front of `rest`, consuming it.
bool parseLabels(absl::string_view& rest, std::map<std::string, std::string>& labels) {
  rest.remove_prefix(1);  // '{'
  while (true) {
    rest = absl::StripLeadingAsciiWhitespace(rest);
    if (absl::ConsumePrefix(&rest, "}")) {
      return true;
    }
    size_t eq = rest.find('=');
    if (eq == absl::string_view::npos) {
      return false;
    }
    std::string name(absl::StripAsciiWhitespace(rest.substr(0, eq)));
    rest = absl::StripLeadingAsciiWhitespace(rest.substr(eq + 1));
    if (name.empty() || !absl::ConsumePrefix(&rest, "\"")) {
      return false;
    }
    std::string value;
    size_t i = 0;
    for (; i < rest.size() && rest[i] != '"'; ++i) {
      if (rest[i] == '\\' && i + 1 < rest.size()) {
        ++i;
        value += rest[i] == 'n' ? '\n' : rest[i];
      } else {
        value += rest[i];
      }
    }
    if (i >= rest.size()) {
      return false;
    }
    rest.remove_prefix(i + 1);
    labels[name] = std::move(value);
    rest = absl::StripLeadingAsciiWhitespace(rest);
    absl::ConsumePrefix(&rest, ",");
  }
}

// Series identity inside one agent: name and labels.
using SeriesKey = std::pair<std::string, std::map<std::string, std::string>>;

std::map<SeriesKey, double> bySeries(const std::vector<PromSample>& samples) {
  std::map<SeriesKey, double> out;
  for (const auto& s : samples) {
    out[{s.name, s.labels}] = s.value;
  }
  return out;
}

std::string labelOr(const std::map<std::string, std::string>& labels, const std::string& name) {
  auto it = labels.find(name);
  return it == labels.end() ? "unknown" : it->second;
}

}  // namespace

absl::StatusOr<std::vector<PromSample>> parsePromText(std::string_view page) {
  std::vector<PromSample> out;
  size_t number = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(page.data(), page.size()), '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) {
      continue;
    }
    PromSample s;
    size_t end = line.find_first_of("{ \t");
    if (end == 0 || end == absl::string_view::npos) {
      return badLine(number, line, "no value");
    }
    s.name = std::string(line.substr(0, end));
    absl::string_view rest = line.substr(end);
    if (absl::StartsWith(rest, "{") && !parseLabels(rest, s.labels)) {
      return badLine(number, line, "bad labels");
    }
    rest = absl::StripLeadingAsciiWhitespace(rest);
    absl::string_view value = rest.substr(0, rest.find_first_of(" \t"));  // a timestamp may follow
    if (!parseValue(value, s.value)) {
      return badLine(number, line, "bad value");
    }
    out.push_back(std::move(s));
  }
  return out;
}

double histogramQuantile(double q, std::vector<Bucket> buckets) {
  if (q < 0) {
    return -std::numeric_limits<double>::infinity();
  }
  if (q > 1) {
    return std::numeric_limits<double>::infinity();
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::sort(buckets.begin(), buckets.end(),
            [](const Bucket& a, const Bucket& b) { return a.upper < b.upper; });
  if (buckets.size() < 2 || !std::isinf(buckets.back().upper)) {
    return nan;
  }
  // Counts of a cumulative histogram never fall; rates taken at slightly different times can,
  // and PromQL evens them out the same way.
  for (size_t i = 1; i < buckets.size(); ++i) {
    buckets[i].count = std::max(buckets[i].count, buckets[i - 1].count);
  }
  const double observations = buckets.back().count;
  if (observations == 0) {
    return nan;
  }
  double rank = q * observations;
  size_t b = 0;
  while (b < buckets.size() - 1 && buckets[b].count < rank) {
    ++b;
  }
  if (b == buckets.size() - 1) {
    return buckets[buckets.size() - 2].upper;
  }
  if (b == 0 && buckets[0].upper <= 0) {
    return buckets[0].upper;
  }
  double start = 0;
  double end = buckets[b].upper;
  double count = buckets[b].count;
  if (b > 0) {
    start = buckets[b - 1].upper;
    count -= buckets[b - 1].count;
    rank -= buckets[b - 1].count;
  }
  return start + (end - start) * (rank / count);
}

std::pair<std::string, std::string> rowLabels(StatBy by) {
  return by == StatBy::kWorkload
             ? std::pair<std::string, std::string>{"destination_workload_namespace",
                                                   "destination_workload"}
             : std::pair<std::string, std::string>{"destination_service_namespace",
                                                   "destination_service_name"};
}

bool isFailureCode(std::string_view code) {
  return code == "0" || (code.size() == 3 && code[0] == '5');
}

std::vector<StatRow> statRows(const Scrape& before, const Scrape& after, double seconds,
                              const StatOptions& options) {
  const auto [ns_label, name_label] = rowLabels(options.by);
  std::map<std::pair<std::string, std::string>, StatRow> rows;
  // Per row: bucket bound -> observations in the window.
  std::map<std::pair<std::string, std::string>, std::map<double, double>> buckets;
  for (const auto& [agent, samples] : after.by_agent) {
    auto then_it = before.by_agent.find(agent);
    std::map<SeriesKey, double> then = then_it == before.by_agent.end()
                                           ? std::map<SeriesKey, double>{}
                                           : bySeries(then_it->second);
    for (const auto& [key, now] : bySeries(samples)) {
      const auto& [name, labels] = key;
      if (!name.starts_with("istio_") || labelOr(labels, "reporter") != options.reporter) {
        continue;
      }
      std::string ns = labelOr(labels, ns_label);
      if (!options.ns.empty() && ns != options.ns) {
        continue;
      }
      auto row_key = std::make_pair(ns, labelOr(labels, name_label));
      auto it = then.find(key);
      // A counter that fell restarted with its agent: all of its value is new.
      double delta = it == then.end() || now < it->second ? now : now - it->second;
      bool known = true;
      if (name == "istio_requests_total") {
        rows[row_key].requests += delta;
        if (isFailureCode(labelOr(labels, "response_code"))) {
          rows[row_key].failures += delta;
        }
      } else if (name == "istio_request_duration_milliseconds_bucket") {
        double le = 0;
        if (parseValue(labelOr(labels, "le"), le)) {
          buckets[row_key][le] += delta;
        }
      } else if (name == "istio_tcp_connections_opened_total") {
        rows[row_key].tcp_opened += delta;
        rows[row_key].tcp_open += now;
      } else if (name == "istio_tcp_connections_closed_total") {
        rows[row_key].tcp_open -= now;
      } else {
        known = false;
      }
      if (known) {
        rows[row_key].ns = row_key.first;
        rows[row_key].name = row_key.second;
      }
    }
  }
  std::vector<StatRow> out;
  for (auto& [key, row] : rows) {
    row.seconds = seconds;
    std::vector<Bucket> b;
    for (const auto& [le, count] : buckets[key]) {
      b.push_back({le, count});
    }
    auto quantile = [&](double q) -> std::optional<double> {
      double v = histogramQuantile(q, b);
      return std::isnan(v) ? std::nullopt : std::optional<double>(v);
    };
    row.p50 = quantile(0.5);
    row.p95 = quantile(0.95);
    row.p99 = quantile(0.99);
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace ferry::cli
