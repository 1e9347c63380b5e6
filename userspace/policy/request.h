// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// What the engine knows about one connection (L4) or one HTTP request on it (L7). Views only:
// the caller owns the bytes for the duration of the evaluate() call.

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "net/ip.h"

namespace ferry::policy {

struct HttpRequest {
  std::string_view method;
  std::string_view host;  // :authority, or Host for HTTP/1.1
  // The normalized path, the same one that is forwarded. A query string ("?...") is ignored
  // for matching, as Istio matches `paths` against the path alone.
  std::string_view path;
  // Every header as received, names in any case (matching is case-insensitive on names).
  // A header sent several times appears several times.
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  // A CONNECT or a non-WebSocket upgrade: once the app accepts it the connection (or h2
  // stream) is an opaque tunnel no later rule sees. Envoy refuses upgrade types it is not
  // configured for (403), so such a request is allowed only by an ALLOW rule with an operation
  // whose `methods` name `method` exactly ("*", prefixes and rules without methods do not),
  // and is denied when no ALLOW policy applies. DENY and AUDIT rules match as usual.
  bool tunnel = false;
};

// A request's verified JWT (RequestAuthentication), as Istio's request.auth.* attributes.
struct RequestAuth {
  std::string_view principal;  // "<iss>/<sub>"
  std::string_view presenter;  // `azp`; empty when absent
  std::vector<std::string_view> audiences;
  // Every string claim, and every string in a list claim, by path: top-level names as they are,
  // nested object members as "<outer>][<inner>" (request.auth.claims[outer][inner]). A name
  // appears once per value.
  std::vector<std::pair<std::string_view, std::string_view>> claims;
};

struct Request {
  // The peer's authentication state: its verified SPIFFE ID
  // ("spiffe://cluster.local/ns/demo/sa/client") when it authenticated (mutual TLS, or checked
  // locally on the same node), empty for an unauthenticated (plaintext) peer. Namespace and
  // service account are read from it, never from anything the client sends. No identity value
  // matches an unauthenticated peer, `*` included (principals, namespaces, serviceAccounts,
  // source.principal, source.namespace), and their `not` forms hold for it, as in Istio
  // (ztunnel src/rbac.rs tests not_principals/not_namespaces; ISTIO-SECURITY-2021-004).
  std::string_view source_principal;
  std::optional<net::IpAddress> source_ip;
  std::optional<net::IpAddress> destination_ip;
  uint16_t destination_port = 0;
  std::string_view sni;
  // Null for a connection-level decision; see engine.h for what it does with rules that need
  // HTTP attributes.
  const HttpRequest* http = nullptr;
  // The request's verified JWT; null when it carried none (no request principal). Only read
  // with `http` set.
  const RequestAuth* auth = nullptr;
  // The destination port carries HTTP and each request on it is decided again with `http` set.
  // Only read when `http` is null (the connection-level decision on such a port).
  bool http_port = false;
};

}  // namespace ferry::policy
