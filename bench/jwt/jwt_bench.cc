// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// CPU time per request of request authentication (userspace/jwt) with the engine's decision, beside
// the policy-only decision: a new token verified with the state's parsed keys (what the agent does
// for a token it has not seen), a repeated token (the verified-token cache), the same with the
// JWKS parsed for every request (no cached key), and a request without a token. Not a test; see
// README.md.
#include <time.h>

#include <cstdio>
#include <ctime>
#include <string>

#include "jwt/authenticator.h"
#include "jwt/token_signer.h"
#include "policy/engine.h"

namespace {

using namespace ferry;
using jwt::testing::TestKey;

double cpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

template <typename Fn>
double perCall(int n, Fn fn) {
  fn();  // warm
  const double start = cpuNs();
  for (int i = 0; i < n; ++i) {
    fn();
  }
  return (cpuNs() - start) / n;
}

}  // namespace

int main() {
  const int64_t now = std::time(nullptr);
  const nlohmann::json claims = {{"iss", "https://issuer.bench"},
                                 {"sub", "alice"},
                                 {"aud", "api"},
                                 {"exp", now + 3600},
                                 {"groups", {"dev", "admins"}}};
  // The policy-only L7 request: one ALLOW rule on the JWT's claims, the case the agent decides
  // for every request once a RequestAuthentication applies.
  model::AuthorizationPolicy allow;
  allow.key = {"demo", "allow"};
  allow.selector = model::Labels{{"app", "web"}};
  model::Rule rule;
  rule.from.push_back(model::Source{.request_principals = {"https://issuer.bench/*"}});
  rule.to.push_back(model::Operation{.methods = {"GET"}, .paths = {"/api/*"}});
  allow.rules.push_back(rule);
  auto snapshot = policy::PolicySnapshot::build({allow});
  const policy::WorkloadPolicies policies = snapshot->forWorkload("demo", {{"app", "web"}});

  std::printf("%-8s %-28s %12s %12s\n", "alg", "case", "cpu ns/req", "x policy");
  for (auto [type, alg] :
       {std::pair{TestKey::Type::kRsa, "RS256"}, std::pair{TestKey::Type::kRsa, "PS256"},
        std::pair{TestKey::Type::kP256, "ES256"}, std::pair{TestKey::Type::kP384, "ES384"}}) {
    TestKey key(type, "k1");
    model::JwtRule jwt_rule;
    jwt_rule.issuer = "https://issuer.bench";
    jwt_rule.audiences = {"api"};
    jwt_rule.jwks = key.jwks();
    const jwt::Authenticator cached({jwt_rule});
    const std::string bearer = "Bearer " + key.sign(alg, claims);
    std::vector<std::pair<std::string_view, std::string_view>> headers = {
        {"host", "web"}, {"user-agent", "bench"}, {"accept", "*/*"}, {"authorization", bearer}};
    policy::HttpRequest http{.method = "GET", .host = "web", .path = "/api/x", .headers = headers};
    policy::Request request{.destination_port = 8080, .http = &http};

    jwt::Outcome out;
    int bad = 0;
    const double policy_only = perCall(20000, [&] {
      request.auth = nullptr;
      bad += policies.evaluate(request).allowed ? 1 : 0;  // no request principal: denied
    });
    // Distinct tokens (a "jti" each), so that every one is verified: keys parsed once.
    constexpr int kDistinct = 200;
    std::vector<std::string> bearers;
    for (int i = 0; i < kDistinct + 1; ++i) {
      nlohmann::json c = claims;
      c["jti"] = i;
      bearers.push_back("Bearer " + key.sign(alg, c));
    }
    int next = 0;
    const double verify = perCall(kDistinct, [&] {
      headers.back().second = bearers[next++];
      cached.authenticate(headers, "", now, out);
      request.auth = out.auth();
      bad += policies.evaluate(request).allowed ? 0 : 1;
    });
    headers.back().second = bearer;
    const double with_cache = perCall(20000, [&] {
      cached.authenticate(headers, "", now, out);
      request.auth = out.auth();
      bad += policies.evaluate(request).allowed ? 0 : 1;
    });
    const double no_cache = perCall(50, [&] {
      const jwt::Authenticator fresh({jwt_rule});
      fresh.authenticate(headers, "", now, out);
      request.auth = out.auth();
      bad += policies.evaluate(request).allowed ? 0 : 1;
    });
    std::vector<std::pair<std::string_view, std::string_view>> no_token(headers.begin(),
                                                                        headers.end() - 1);
    const double missing = perCall(20000, [&] {
      cached.authenticate(no_token, "", now, out);
      request.auth = out.auth();
      bad += policies.evaluate(request).allowed ? 1 : 0;
    });
    if (bad != 0) {
      std::fprintf(stderr, "unexpected decision\n");
      return 1;
    }
    std::printf("%-8s %-28s %12.0f %12.1f\n", alg, "policy only (no token)", policy_only, 1.0);
    std::printf("%-8s %-28s %12.0f %12.1f\n", alg, "new token, keys cached", verify,
                verify / policy_only);
    std::printf("%-8s %-28s %12.0f %12.1f\n", alg, "repeated token (cache hit)", with_cache,
                with_cache / policy_only);
    std::printf("%-8s %-28s %12.0f %12.1f\n", alg, "token, JWKS parsed per req", no_cache,
                no_cache / policy_only);
    std::printf("%-8s %-28s %12.0f %12.1f\n", alg, "no token (rules apply)", missing,
                missing / policy_only);
  }
  return 0;
}
