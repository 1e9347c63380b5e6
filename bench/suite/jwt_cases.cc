// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "suite/jwt_cases.h"

#include <ctime>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "jwt/token_signer.h"

namespace ferry::bench {

absl::StatusOr<JwtCases> makeJwtCases(const std::string& alg, const std::string& dir) {
  using jwt::testing::TestKey;
  TestKey::Type type;
  if (alg == "RS256" || alg == "PS256") {
    type = TestKey::Type::kRsa;
  } else if (alg == "ES256") {
    type = TestKey::Type::kP256;
  } else if (alg == "ES384") {
    type = TestKey::Type::kP384;
  } else {
    return absl::InvalidArgumentError("--l7-jwt: RS256, PS256, ES256 or ES384");
  }
  TestKey key(type, "bench-1");
  JwtCases out;
  out.request_authentication = absl::StrCat(
      "apiVersion: security.ferry.dev/v1alpha1\nkind: RequestAuthentication\n"
      "metadata: {name: bench-l7, namespace: default}\nspec:\n"
      "  selector: {matchLabels: {app: n2p3}}\n  jwtRules:\n  - issuer: ",
      kJwtIssuer, "\n    audiences: [bench]\n    jwks: '", key.jwks(), "'\n");
  out.policy_rule = absl::StrCat(
      "  - from:\n    - source:\n        principals: [\"cluster.local/ns/default/sa/sa-n1p1\"]\n"
      "        requestPrincipals: [\"",
      kJwtIssuer,
      "/*\"]\n    to:\n    - operation:\n        methods: [\"GET\"]\n        paths: "
      "[\"/jwt/*\"]\n");
  const int64_t exp = std::time(nullptr) + 24 * 3600;
  auto token = [&](int jti) {
    return absl::StrCat("Authorization: Bearer ",
                        key.sign(alg, {{"iss", kJwtIssuer},
                                       {"sub", "bench-client"},
                                       {"aud", "bench"},
                                       {"exp", exp},
                                       {"jti", jti},
                                       {"groups", {"dev", "bench"}}}),
                        "\n");
  };
  out.repeated_headers = dir + "/jwt-repeated.txt";
  out.distinct_headers = dir + "/jwt-distinct.txt";
  std::ofstream(out.repeated_headers) << token(-1);
  std::ofstream distinct(out.distinct_headers);
  for (int i = 0; i < kDistinctTokens; ++i) {
    distinct << token(i);
  }
  if (!distinct.good()) {
    return absl::InternalError("cannot write " + out.distinct_headers);
  }
  return out;
}

}  // namespace ferry::bench
