// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// One JWS compact token (RFC 7515/7519) checked the way Envoy's jwt_authn filter checks it for
// Istio: structure, issuer, time (exp/nbf with 60 s of clock skew), audiences, then the signature
// with a key of the JWKS whose type fits the token's algorithm. Errors carry Envoy's messages,
// which become the 401's body.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "jwt/jwks.h"

namespace ferry::jwt {

inline constexpr size_t kMaxTokenBytes = 16 * 1024;
inline constexpr int64_t kClockSkewSeconds = 60;  // Envoy's default clock_skew_seconds
inline constexpr int kMaxClaimDepth = 8;

// A claim value as the engine and the claim-to-header output see it.
struct Claim {
  std::string path;   // "groups", nested "outer][inner" (request.auth.claims[outer][inner])
  std::string value;  // a string, or one string of a list of strings; numbers/bools as JSON
  bool is_string = true;
};

// A token split and decoded, not yet trusted.
struct Token {
  Alg alg = Alg::kRS256;
  std::string kid;
  std::string issuer, subject, presenter;
  std::vector<std::string> audiences;
  bool has_exp = false, has_nbf = false;
  int64_t exp = 0, nbf = 0;
  std::vector<Claim> claims;
  std::string_view signing_input;  // "<header>.<payload>" within the caller's token
  std::string_view payload_b64;    // within the caller's token
  std::string signature;
};

// Structure only: three base64url parts, JSON objects without duplicate member names, a
// supported `alg` (never "none" or HS*), typed registered claims.
absl::StatusOr<Token> parseToken(std::string_view token);

// Time and audiences; `audiences` empty means not checked (Istio).
absl::Status checkClaims(const Token& token, const std::vector<std::string>& audiences,
                         int64_t now_seconds);

// The signature, with a key fitting the algorithm whose `kid` equals the token's (as in Envoy, a
// key without `kid` fits any token, and a token without `kid` tries every fitting key).
absl::Status checkSignature(const Token& token, const Jwks& jwks);

// A JWS ECDSA signature (r || s, fixed width, RFC 7518 3.4) as the DER OpenSSL verifies; nullopt
// for an odd or empty length or one above P-384's.
std::optional<std::string> ecdsaRawToDer(std::string_view raw);

}  // namespace ferry::jwt
