// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// HTTP/1.1 heads the routed outbound path writes (http_outbound.h): the forwarded request and
// response, re-serialized from what the strict parser accepted (nothing unparsed passes), and
// the agent's own answers (404, 503, 504...).

#include <span>
#include <string>
#include <string_view>

#include "http/http1_parser.h"
#include "http/request_view.h"

namespace ferry::agent {

// Hop-by-hop fields this hop consumes: Connection (and its keep-alive companions), Expect
// (100-continue is answered here, the body is buffered before it goes upstream), Upgrade.
bool hopByHopField(std::string_view name);

// "<method> <target> HTTP/1.1", `fields` (the received ones with Host holding the request's
// authority, http::fieldsWithAuthority) minus hop-by-hop ones and those `edits` removes, then
// the edits' additions (invalid names/values, Host and framing fields dropped).
// Content-Length / Transfer-Encoding are kept: the body is forwarded as received.
std::string forwardedRequestHead(std::string_view method, std::span<const http::Header> fields,
                                 std::string_view target, const http::HeaderEdits& edits);

// "HTTP/1.1 <status> <reason>" and the fields minus hop-by-hop ones and those `edits` removes
// (a route's ResponseHeaderModifier), then the edits' additions (checked as for requests);
// `close` adds "connection: close" (the client connection ends after this response).
std::string forwardedResponseHead(const http::MessageHead& head, bool close,
                                  const http::HeaderEdits& edits = {});

// A complete text/plain response made by the agent.
std::string localReply(int status, std::string_view body, bool close);

// An empty redirect response (RequestRedirect) with `location`.
std::string redirectReply(int status, std::string_view location, bool close);

}  // namespace ferry::agent
