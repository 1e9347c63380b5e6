// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "routing/filters.h"

namespace ferry::routing {
namespace {

std::string_view withoutTrailingSlash(std::string_view s) {
  if (!s.empty() && s.back() == '/') {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

void applyHeaderModifier(const model::HttpHeaderModifier& mod, http::HeaderEdits& edits) {
  for (const auto& [name, value] : mod.set) {
    edits.set(name, value);
  }
  for (const auto& [name, value] : mod.add) {
    edits.add(name, value);
  }
  for (const std::string& name : mod.remove) {
    edits.remove(name);
  }
}

PathRewrite::PathRewrite(const model::HttpPathModifier& modifier, std::string_view matched_prefix)
    : full_(modifier.type == model::HttpPathModifier::Type::kReplaceFullPath) {
  if (full_) {
    value_ = modifier.value;
    return;
  }
  value_ = std::string(withoutTrailingSlash(modifier.value));
  prefix_ = std::string(withoutTrailingSlash(matched_prefix));
}

std::string PathRewrite::apply(std::string_view path) const {
  if (full_) {
    return value_;
  }
  // The rule matched whole path elements: what follows the prefix is empty or starts with '/'.
  // A request that did not match it (not expected) keeps its path after the replacement.
  std::string_view rest = path;
  if (rest.substr(0, prefix_.size()) == prefix_ &&
      (rest.size() == prefix_.size() || rest[prefix_.size()] == '/')) {
    rest.remove_prefix(prefix_.size());
  }
  std::string out;
  out.reserve(value_.size() + rest.size() + 1);
  if (value_.empty() && rest.empty()) {
    out.push_back('/');
  } else if (!value_.empty() && value_[0] != '/') {
    out.push_back('/');  // the decoder only lets replacements start with '/'
  }
  out.append(value_).append(rest);
  return out;
}

Redirect::Redirect(const model::HttpRequestRedirect& redirect, std::string_view matched_prefix)
    : scheme_(redirect.scheme),
      hostname_(redirect.hostname),
      port_(redirect.port),
      status_(redirect.status_code) {
  if (redirect.path) {
    path_.emplace(*redirect.path, matched_prefix);
  }
}

std::string Redirect::location(const RedirectRequest& request) const {
  const std::string_view scheme = scheme_.empty() ? request.scheme : scheme_;
  const std::string_view host = hostname_.empty() ? authorityHost(request.authority) : hostname_;
  uint16_t port = port_;
  if (port == 0) {
    port = scheme_.empty() ? request.listener_port : scheme_ == "https" ? 443 : 80;
  }
  std::string out(scheme);
  out.append("://").append(host);
  const bool default_port = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
  if (!default_port && port != 0) {
    absl::StrAppend(&out, ":", port);
  }
  out.append(path_ ? path_->apply(request.path) : std::string(request.path));
  if (request.has_query) {
    out.append("?").append(request.query);
  }
  return out;
}

std::string_view authorityHost(std::string_view authority) {
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    return close == std::string_view::npos ? authority : authority.substr(0, close + 1);
  }
  size_t colon = authority.rfind(':');
  return colon == std::string_view::npos ? authority : authority.substr(0, colon);
}

}  // namespace ferry::routing
