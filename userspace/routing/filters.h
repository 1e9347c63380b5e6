// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/request_view.h"
#include "model/model.h"

// Gateway API HTTPRoute filters as per-request decisions (docs/gateway-api.md): header
// modifiers as HeaderEdits, URLRewrite's path and Host, RequestRedirect's status and Location.
// Compiled once per rule; the decoder has already refused what the spec forbids.
namespace ferry::routing {

// set, then add, then remove (one name appears in one list only: the decoder checks).
void applyHeaderModifier(const model::HttpHeaderModifier& mod, http::HeaderEdits& edits);

// HTTPPathModifier. ReplacePrefixMatch replaces the whole path elements the rule's PathPrefix
// matched, ignoring a trailing '/' on the prefix and on the replacement:
//   /foo/bar with prefix /foo and replacement /xyz or /xyz/ -> /xyz/bar
//   /foo -> /xyz, /foo/ -> /xyz/, and with an empty or "/" replacement /foo/bar -> /bar,
//   /foo and /foo/ -> /.
class PathRewrite {
 public:
  // `matched_prefix`: the rule's PathPrefix value (used by ReplacePrefixMatch only).
  PathRewrite(const model::HttpPathModifier& modifier, std::string_view matched_prefix);
  // `path`: the normalized request path the rule matched (no query).
  std::string apply(std::string_view path) const;

 private:
  bool full_ = true;
  std::string value_;   // full path, or the replacement without a trailing '/'
  std::string prefix_;  // the matched prefix without a trailing '/' ("/" -> "")
};

struct UrlRewrite {
  std::string hostname;  // empty: Host unchanged
  std::optional<PathRewrite> path;
};

// What a redirect needs to know of the request.
struct RedirectRequest {
  std::string_view scheme = "http";  // the mesh hop is plain HTTP inside the pod
  std::string_view authority;        // normalized Host ("web", "web:8080", "[fd00::1]:80")
  uint16_t listener_port = 0;        // the Service port the request came to
  std::string_view path;
  std::string_view query;
  bool has_query = false;
};

class Redirect {
 public:
  Redirect(const model::HttpRequestRedirect& redirect, std::string_view matched_prefix);
  int status() const { return status_; }
  // scheme://host[:port]path[?query]. Port: the filter's, else the scheme's well-known port
  // when the filter sets a scheme, else the listener port; left out for http:80 and https:443.
  std::string location(const RedirectRequest& request) const;

 private:
  std::string scheme_, hostname_;
  std::optional<PathRewrite> path_;
  uint16_t port_ = 0;
  int status_ = 302;
};

// The host part of an authority: "web:80" -> "web", "[fd00::1]:80" -> "[fd00::1]".
std::string_view authorityHost(std::string_view authority);

}  // namespace ferry::routing
