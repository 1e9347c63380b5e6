// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// --l7-jwt=ALG: the L7 case again with a RequestAuthentication on its pod and requests that carry
// bearer tokens signed with ALG (issue 21's goal: a JWT-checked request costs at most 1.3x a
// policy-only L7 request in agent CPU). Two cases beside ferry_l7, in the same run:
// - ferry_l7_jwt: one token repeated (the agent's verified-token cache hit, the steady state);
// - ferry_l7_jwt_new: kDistinctTokens tokens in turn, more than the agent's cache holds, so that
//   every request's signature is verified (a first-seen token with the cached key).
// Their requests go to /jwt/..., which the L7 policy allows only with a valid token's principal.

#include <string>

#include "absl/status/statusor.h"

namespace ferry::bench {

inline constexpr int kDistinctTokens = 2048;  // the agent keeps 8 x 64 verified tokens
inline constexpr char kJwtPath[] = "/jwt/1k";
inline constexpr char kJwtIssuer[] = "https://issuer.bench";

struct JwtCases {
  std::string request_authentication;  // manifest, JWKS inline
  std::string policy_rule;             // a rule for the L7 policy's `rules:` list
  std::string repeated_headers;        // ferry-loadgen --header-file: one token
  std::string distinct_headers;        // kDistinctTokens tokens, one a line
};

// Makes a key for `alg` (RS256, PS256, ES256, ES384), signs the tokens and writes the two
// header files into `dir`.
absl::StatusOr<JwtCases> makeJwtCases(const std::string& alg, const std::string& dir);

}  // namespace ferry::bench
