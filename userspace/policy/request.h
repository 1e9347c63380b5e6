// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// What the engine knows about one connection (L4) or one HTTP request on it (L7). Views only:
// the caller owns the bytes for the duration of the evaluate() call.

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/ip.h"

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
};

struct Request {
  // The peer's verified SPIFFE ID ("spiffe://cluster.local/ns/demo/sa/client"); empty for a
  // plaintext peer. Namespaces are read from it, never from anything the client sends.
  std::string_view source_principal;
  std::optional<IpAddress> source_ip;
  std::optional<IpAddress> destination_ip;
  uint16_t destination_port = 0;
  std::string_view sni;
  // Null for an L4 decision (a connection on a port that is not HTTP). See engine.h for what
  // L4 evaluation does with rules that need HTTP attributes.
  const HttpRequest* http = nullptr;
};

}  // namespace ferry::policy
