// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// HTTP status codes as text: the one reason-phrase table for every HTTP/1 status line Ferry
// writes (the agent's local replies and forwarded response heads, the HTTP/1 filter's refusals,
// the admin server, and the test fakes). HTTP/2 has no reason phrase.

namespace ferry::http {

// RFC 9110 section 15's phrase for `status`; a code it does not name gets its class's generic
// phrase ("OK" below 400, "Client Error", "Server Error"), so a status line is always valid.
const char* reasonPhrase(int status);

}  // namespace ferry::http
