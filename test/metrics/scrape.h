// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Reading the Prometheus text format in tests: fetch a page with curl, find one sample.

#include <map>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "harness/process.h"

namespace ferry::metrics::testing {

inline std::string httpGet(const std::string& url) {
  auto r = harness::runProcess({}, {"curl", "-sS", "--max-time", "5", url}, absl::Seconds(10));
  return r.ok() && r->exit_code == 0 ? r->out : "";
}

// The value of the sample `name` whose labels include every pair in `match`, or nullopt.
// With `exact_labels`, the sample must have no other labels either.
inline std::optional<double> sampleValue(const std::string& text, const std::string& name,
                                         const std::map<std::string, std::string>& match) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "#") || !absl::StartsWith(line, name)) {
      continue;
    }
    absl::string_view rest = line.substr(name.size());
    if (!rest.empty() && rest[0] != '{' && rest[0] != ' ') {
      continue;  // a longer metric name with the same prefix
    }
    bool all = true;
    for (const auto& [k, v] : match) {
      all = all && absl::StrContains(rest, absl::StrCat(k, "=\"", v, "\""));
    }
    if (!all) {
      continue;
    }
    double value = 0;
    if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &value)) {
      return value;
    }
  }
  return std::nullopt;
}

inline int countSamples(const std::string& text, const std::string& name) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, name + "{") || absl::StartsWith(line, name + " ")) {
      ++n;
    }
  }
  return n;
}

}  // namespace ferry::metrics::testing
