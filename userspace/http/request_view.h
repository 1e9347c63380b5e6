// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/http1_parser.h"

// What the L7 filters (HTTP/1 and HTTP/2) show the authorization callback, and what it answers.
// The same view type serves both protocols so one policy engine adapter covers both.
namespace ferry::http {

enum class HttpProtocol : uint8_t { kHttp10, kHttp11, kHttp2 };

// What a request turns its connection (HTTP/1) or stream (HTTP/2) into once the app accepts it.
// Past that point the filter relays opaque bytes that no path rule ever sees.
enum class Tunnel : uint8_t {
  kNone,
  kWebSocket,  // GET with `Upgrade: websocket` (only): authorized as the GET it starts as
  kConnect,    // CONNECT, HTTP/1 or HTTP/2: authorized on its target authority
  kUpgrade,    // any other protocol switch (h2c is stripped before it gets here)
};

struct RequestView {
  HttpProtocol protocol = HttpProtocol::kHttp11;
  std::string_view method;
  // Normalized absolute path without the query: what policy `paths` match, and exactly what is
  // forwarded. Empty for CONNECT (authority-form) and "OPTIONS *".
  std::string_view path;
  std::string_view query;  // without '?'
  // Normalized (authority.h): the target's authority for absolute-form and CONNECT, else Host
  // (HTTP/1) or :authority (HTTP/2); exactly what is forwarded.
  std::string_view authority;
  Tunnel tunnel = Tunnel::kNone;
  bool grpc = false;  // content-type application/grpc[+...]
  // Every regular field as received (no pseudo-headers). HTTP/2 names are lowercase;
  // HTTP/1 names keep their case, so look them up with the helpers below.
  std::span<const Header> headers;

  // First value of `name` (case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const;
  // All values of `name` joined with "," (Envoy's and Istio's view of a repeated field), or
  // nullopt when absent.
  std::optional<std::string> headerJoined(std::string_view name) const;
};

// Edits to the forwarded request's header fields, collected from the hook below and applied
// once when the request is forwarded. The place where tracing (traceparent) and other
// propagated headers go.
class HeaderEdits {
 public:
  // Replaces every field named `name` (case-insensitive) with one field.
  void set(std::string name, std::string value);
  // Appends a field, keeping existing ones.
  void add(std::string name, std::string value) {
    adds_.emplace_back(std::move(name), std::move(value));
  }
  // Removes every received field named `name`.
  void remove(std::string name) { removes_.push_back(std::move(name)); }

  bool removes(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& additions() const { return adds_; }
  bool empty() const { return adds_.empty() && removes_.empty(); }
  // Everything `other` does, after what this one does.
  void append(const HeaderEdits& other) {
    removes_.insert(removes_.end(), other.removes_.begin(), other.removes_.end());
    adds_.insert(adds_.end(), other.adds_.begin(), other.adds_.end());
  }
  void clear() {
    adds_.clear();
    removes_.clear();
  }

 private:
  std::vector<std::pair<std::string, std::string>> adds_;
  std::vector<std::string> removes_;
};

// The authorizer's answer. `policy` and `rule` name what decided (for logs and metrics).
struct AuthzDecision {
  bool allow = false;
  std::string policy;
  std::string rule;
  std::string reason;  // a refusal's, for its log line: "denied by ns/name rule 0", ...
  // A refusal's local reply, as Envoy answers: its status (403 policy, 429 rate limit, 401
  // refused JWT), its body (empty: denialBody(status)), the header fields it carries
  // (Retry-After, WWW-Authenticate), and Envoy's response flag for it ("RL"; empty: none).
  uint16_t status = 403;
  std::string body;
  std::vector<std::pair<std::string, std::string>> reply_headers;
  std::string response_flags;
  // Edits to an allowed request's fields (request authentication: the token removed, claims
  // added), applied before the RequestHeaderHook's.
  HeaderEdits edits;
};

using Authorizer = std::function<AuthzDecision(const RequestView&)>;

// The body of a local reply refusing a request (Envoy's words): "RBAC: access denied" for 403,
// "local_rate_limited" for 429.
inline constexpr std::string_view kDeniedBody = "RBAC: access denied";
inline constexpr std::string_view kRateLimitedBody = "local_rate_limited";
std::string_view denialBody(uint16_t status);
// What a refusal's local reply carries: the decision's body, else denialBody(status).
inline std::string_view denialBody(const AuthzDecision& d) {
  return d.body.empty() ? denialBody(d.status) : std::string_view(d.body);
}

// Called for each allowed request just before it is forwarded. Names and values are checked
// by the filter (a bad edit is dropped, never forwarded).
using RequestHeaderHook = std::function<void(const RequestView&, HeaderEdits&)>;

}  // namespace ferry::http
