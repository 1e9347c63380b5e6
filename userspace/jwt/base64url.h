// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Base64url without padding (RFC 4648 section 5, as JWS compact serialization and JWK use it).

#include <optional>
#include <string>
#include <string_view>

namespace ferry::jwt {

// Strict: only the url-safe alphabet, no '=' padding, no whitespace, no length of 1 mod 4 and
// no stray bits in the last character (each encoding has exactly one decoding).
std::optional<std::string> base64UrlDecode(std::string_view in);
std::string base64UrlEncode(std::string_view in);

}  // namespace ferry::jwt
