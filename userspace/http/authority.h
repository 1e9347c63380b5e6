// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "http/http1_parser.h"
#include "http/path.h"

// The authority (host[:port]) of a request, decided once and used for both policy matching and
// forwarding, so the app never receives a host other than the one policy matched. One function
// per question, shared by the inbound filters (HTTP/1 and HTTP/2) and the routed outbound path.
namespace ferry::http {

// RFC 3986 host [":" port]: a reg-name without percent-encoding (legal but never useful, and a
// classic parser-confusion vector), an IPv4 address, or a bracketed IP literal; the port has at
// most five digits and may be empty.
bool validAuthority(std::string_view authority);

// The normal form of a valid authority:
//   - lower case (hosts are case-insensitive, RFC 3986 3.2.2);
//   - one trailing dot of a name removed ("admin.example." is the same DNS name as
//     "admin.example"); a name still ending in a dot, or empty, is refused;
//   - an empty port removed ("admin.example:" means the default port, RFC 3986 6.2.3);
//   - a port's leading zeros removed; a port above 65535 is refused.
// Default ports (":80") are kept: the port is part of what the app may compare (virtual hosts,
// generated URLs), the scheme is not always known here (h2c's :scheme is the client's word),
// and policy host matching already ignores any port after an exact host, as Istio's generated
// `host(:[0-9]+)?` does, so a default port cannot slip past an exact host rule.
absl::StatusOr<std::string> normalizeAuthority(std::string_view authority);

// The authority of an HTTP/1 request (RFC 9112 3.2.2 and 3.2.3), normalized: the target's own
// authority (absolute-form, or CONNECT's authority-form) wins over Host; otherwise Host. A
// request with neither is refused (400), HTTP/1.0 included: there is nothing to authorize host
// rules against, and nothing honest to forward.
absl::StatusOr<std::string> requestAuthority(const MessageHead& head, const RequestTarget& target);

// The authority a mirrored copy of a request carries (HTTPRoute RequestMirror), as Envoy's
// shadow writer makes it: "-shadow" after the host, before any port ("web:80" ->
// "web-shadow:80", "[::1]:80" -> "[::1]-shadow:80", "web" -> "web-shadow").
std::string shadowAuthority(std::string_view authority);

// The fields to forward for a request whose authority is `authority`: one `Host` field holding
// it, first (RFC 9112 3.2), then every received field except Host, in order. Views into
// `received` and `authority`.
void fieldsWithAuthority(std::span<const Header> received, std::string_view authority,
                         std::vector<Header>& out);

}  // namespace ferry::http
