// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "http/request_view.h"
#include "model/model.h"
#include "re2/re2.h"

// One HTTPRouteMatch compiled once (regexes built, prefixes trimmed), and the Gateway API
// precedence between matches. Internal to the route table; public for tests and the bench.
namespace ferry::routing {

class CompiledMatch {
 public:
  // Errors name the bad part (e.g. "path: bad regular expression \"(\": missing )").
  static absl::StatusOr<CompiledMatch> compile(const model::HttpRouteMatch& match);

  bool matches(const http::RequestView& request) const;

  // Gateway API precedence inputs (HTTPRouteRule docs): exact path, then the longest prefix,
  // then a method, then the most header matches, then the most query matches. Regular
  // expressions rank below other prefixes but above the catch-all "/" (absent path), as Istio
  // ranks them, so a regex rule is not shadowed by a default rule.
  enum class PathRank : uint8_t { kCatchAll = 0, kRegex = 1, kPrefix = 2, kExact = 3 };
  PathRank pathRank() const { return path_rank_; }
  size_t pathLength() const { return path_.size(); }
  bool hasMethod() const { return method_.has_value(); }
  size_t headerCount() const { return headers_.size(); }
  size_t queryCount() const { return queries_.size(); }

 private:
  struct ValueMatch {
    std::string name;
    std::string value;                 // exact value
    std::shared_ptr<const RE2> regex;  // set for RegularExpression (full match)
    static absl::StatusOr<ValueMatch> compile(const std::string& name, const std::string& value,
                                              bool is_regex, const std::string& where);
    bool matches(std::string_view v) const;
  };

  bool pathMatches(std::string_view path) const;

  PathRank path_rank_ = PathRank::kCatchAll;
  std::string path_ = "/";  // exact path, prefix without trailing '/' (except "/"), or regex
  std::shared_ptr<const RE2> path_regex_;
  std::optional<std::string> method_;
  std::vector<ValueMatch> headers_;
  std::vector<ValueMatch> queries_;
};

// First value of `name` in a query string ("a=1&b=2"), %XX-decoded; nullopt when absent.
std::optional<std::string> queryParam(std::string_view query, std::string_view name);

}  // namespace ferry::routing
