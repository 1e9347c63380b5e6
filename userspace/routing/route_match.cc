// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "routing/route_match.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace ferry::routing {
namespace {

absl::StatusOr<std::shared_ptr<const RE2>> compileRegex(const std::string& pattern,
                                                        const std::string& where) {
  RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_shared<const RE2>(pattern, options);
  if (!re->ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": bad regular expression \"", pattern, "\": ", re->error()));
  }
  return re;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = absl::ascii_tolower(c);
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

std::string percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> queryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    std::string_view key = pair.substr(0, pair.find('='));
    std::string_view value =
        key.size() < pair.size() ? pair.substr(key.size() + 1) : std::string_view();
    bool same = key.find('%') == std::string_view::npos ? key == name : percentDecode(key) == name;
    if (same) {
      return percentDecode(value);
    }
  }
  return std::nullopt;
}

absl::StatusOr<CompiledMatch::ValueMatch> CompiledMatch::ValueMatch::compile(
    const std::string& name, const std::string& value, bool is_regex, const std::string& where) {
  ValueMatch v{.name = name, .value = value};
  if (is_regex) {
    auto re = compileRegex(value, where);
    if (!re.ok()) {
      return re.status();
    }
    v.regex = *std::move(re);
  }
  return v;
}

bool CompiledMatch::ValueMatch::matches(std::string_view v) const {
  if (regex) {
    return RE2::FullMatch(v, *regex);
  }
  return v == value;
}

absl::StatusOr<CompiledMatch> CompiledMatch::compile(const model::HttpRouteMatch& match) {
  CompiledMatch out;
  if (match.path) {
    const model::HttpPathMatch& p = *match.path;
    switch (p.type) {
      case model::HttpPathMatch::Type::kExact:
        out.path_rank_ = PathRank::kExact;
        out.path_ = p.value;
        break;
      case model::HttpPathMatch::Type::kPathPrefix:
        out.path_rank_ = PathRank::kPrefix;
        out.path_ = p.value;
        // "/foo/" and "/foo" are the same prefix: matching is by whole segments.
        while (out.path_.size() > 1 && out.path_.back() == '/') {
          out.path_.pop_back();
        }
        if (out.path_ == "/") {
          out.path_rank_ = PathRank::kCatchAll;
        }
        break;
      case model::HttpPathMatch::Type::kRegularExpression: {
        out.path_rank_ = PathRank::kRegex;
        out.path_ = p.value;
        auto re = compileRegex(p.value, "path");
        if (!re.ok()) {
          return re.status();
        }
        out.path_regex_ = *std::move(re);
        break;
      }
    }
    if (out.path_rank_ != PathRank::kRegex && (p.value.empty() || p.value[0] != '/')) {
      return absl::InvalidArgumentError(
          absl::StrCat("path: \"", p.value, "\" does not start with '/'"));
    }
  }
  out.method_ = match.method;
  for (const auto& h : match.headers) {
    bool re = h.type == model::HttpHeaderMatch::Type::kRegularExpression;
    auto v = ValueMatch::compile(h.name, h.value, re, absl::StrCat("header ", h.name));
    if (!v.ok()) {
      return v.status();
    }
    out.headers_.push_back(*std::move(v));
  }
  for (const auto& q : match.query_params) {
    bool re = q.type == model::HttpQueryMatch::Type::kRegularExpression;
    auto v = ValueMatch::compile(q.name, q.value, re, absl::StrCat("query parameter ", q.name));
    if (!v.ok()) {
      return v.status();
    }
    out.queries_.push_back(*std::move(v));
  }
  return out;
}

bool CompiledMatch::pathMatches(std::string_view path) const {
  switch (path_rank_) {
    case PathRank::kExact:
      return path == path_;
    case PathRank::kCatchAll:
      return true;
    case PathRank::kPrefix:
      return path.starts_with(path_) && (path.size() == path_.size() || path[path_.size()] == '/');
    case PathRank::kRegex:
      return RE2::FullMatch(path, *path_regex_);
  }
  return false;
}

bool CompiledMatch::matches(const http::RequestView& request) const {
  if (method_ && request.method != *method_) {
    return false;
  }
  if (!pathMatches(request.path)) {
    return false;
  }
  for (const ValueMatch& h : headers_) {
    // A repeated field is matched as its values joined with ",", the way Envoy sees it.
    std::optional<std::string> value = request.headerJoined(h.name);
    if (!value || !h.matches(*value)) {
      return false;
    }
  }
  for (const ValueMatch& q : queries_) {
    std::optional<std::string> value = queryParam(request.query, q.name);
    if (!value || !q.matches(*value)) {
      return false;
    }
  }
  return true;
}

}  // namespace ferry::routing
