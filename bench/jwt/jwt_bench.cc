// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// CPU time per request of request authentication (userspace/jwt) with the engine's decision, beside
// the policy-only decision and beside OpenSSL's own cost of one signature check (the floor any
// implementation pays for a token it has not seen). Not a test; see README.md.
//
//   jwt_bench [--alg=ES256] [--case=new] [--l7-us=55] [--passes=N]
//
// --alg and --case pick rows (for `perf record`); --l7-us is the agent CPU of a policy-only L7
// request measured by the suite (bench/run.sh --l7-jwt=ALG), to print each row's ratio against it.
#include <openssl/evp.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

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

std::string flag(int argc, char** argv, const std::string& name) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]).rfind(prefix, 0) == 0) {
      return argv[i] + prefix.size();
    }
  }
  return "";
}

// OpenSSL alone, as `openssl speed` measures it: one EVP_PKEY_CTX prepared once, then per token
// the digest of the signing input (EVP_Digest) and EVP_PKEY_verify on it.
double rawVerify(const TestKey& key, const std::string& alg, const std::string& token, int n) {
  auto jwks = jwt::parseJwks(key.jwks());
  auto parsed = jwt::parseToken(token);
  if (!jwks.ok() || !parsed.ok()) {
    return -1;
  }
  EVP_PKEY* pkey = (*jwks)->keys[0].pkey.get();
  const EVP_MD* md = EVP_MD_fetch(nullptr, alg == "ES384" ? "SHA384" : "SHA256", nullptr);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
  EVP_PKEY_verify_init(ctx);
  EVP_PKEY_CTX_set_signature_md(ctx, md);
  if (alg[0] == 'P') {
    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST);
  } else if (alg[0] == 'R') {
    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING);
  }
  std::string sig = parsed->signature;
  if (alg[0] == 'E') {  // JWS r || s to DER, once (not part of the floor)
    sig = jwt::ecdsaRawToDer(sig).value_or("");
  }
  int good = 0;
  const double ns = perCall(n, [&] {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(parsed->signing_input.data(), parsed->signing_input.size(), digest, &len, md,
               nullptr);
    good += EVP_PKEY_verify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                            digest, len) == 1;
  });
  EVP_PKEY_CTX_free(ctx);
  EVP_MD_free(const_cast<EVP_MD*>(md));
  return good == n + 1 ? ns : -1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string only_alg = flag(argc, argv, "alg");
  const std::string only_case = flag(argc, argv, "case");
  const double l7_us = std::atof(flag(argc, argv, "l7-us").c_str());
  // --passes=N: the first-seen row goes N times over its distinct tokens (more than the verified
  // cache holds, so each is verified again), for a profile dominated by verification, not signing.
  const int passes = std::max(1, std::atoi(flag(argc, argv, "passes").c_str()));
  auto want = [&](const char* c) { return only_case.empty() || only_case == c; };

  const int64_t now = std::time(nullptr);
  const nlohmann::json claims = {{"iss", "https://issuer.bench"},
                                 {"sub", "alice"},
                                 {"aud", "api"},
                                 {"exp", now + 3600},
                                 {"groups", {"dev", "admins"}}};
  // The policy-only L7 decision: one ALLOW rule on the JWT's claims, the case the agent decides
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

  std::printf("%-6s %-40s %12s", "alg", "case", "cpu ns/req");
  if (l7_us > 0) {
    std::printf(" %14s", "x L7 request");
  }
  std::printf("\n");
  auto print = [&](const char* alg, const char* what, double ns, double decision_ns) {
    std::printf("%-6s %-40s %12.0f", alg, what, ns);
    if (l7_us > 0) {
      // What the row adds to a policy-only request (whose decision the L7 figure includes).
      std::printf(" %14.3f", (l7_us * 1e3 + ns - decision_ns) / (l7_us * 1e3));
    }
    std::printf("\n");
  };
  int bad = 0;
  for (auto [type, alg] :
       {std::pair{TestKey::Type::kRsa, "RS256"}, std::pair{TestKey::Type::kRsa, "PS256"},
        std::pair{TestKey::Type::kP256, "ES256"}, std::pair{TestKey::Type::kP384, "ES384"}}) {
    if (!only_alg.empty() && only_alg != alg) {
      continue;
    }
    const bool rsa = type == TestKey::Type::kRsa;
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

    const double policy_only = perCall(20000, [&] {
      request.auth = nullptr;
      bad += policies.evaluate(request).allowed ? 1 : 0;  // no request principal: denied
    });
    print(alg, "policy decision only (no token)", policy_only, policy_only);
    const int distinct = rsa ? 2000 : (type == TestKey::Type::kP256 ? 1000 : 150);
    if (want("raw")) {
      print(alg, "OpenSSL floor: digest + EVP_PKEY_verify",
            rawVerify(key, alg, bearer.substr(7), distinct), 0);
    }
    if (want("parse")) {
      const std::string token = bearer.substr(7);
      print(alg, "token parse alone (base64url, JSON, claims)",
            perCall(20000, [&] { bad += jwt::parseToken(token).ok() ? 0 : 1; }), 0);
    }
    // Distinct tokens (a "jti" each), so that every one is verified.
    std::vector<std::string> bearers;
    if (want("new") || want("nokey")) {
      for (int i = 0; i < distinct + 2; ++i) {
        nlohmann::json c = claims;
        c["jti"] = i;
        bearers.push_back("Bearer " + key.sign(alg, c));
      }
    }
    int next = 0;
    if (want("new")) {
      const double ns = perCall(distinct * passes, [&] {
        headers.back().second = bearers[next++ % bearers.size()];
        cached.authenticate(headers, "", now, out);
        request.auth = out.auth();
        bad += policies.evaluate(request).allowed ? 0 : 1;
      });
      print(alg, "first-seen token, cached key + decision", ns, policy_only);
    }
    if (want("nokey")) {
      // What an implementation without a key cache pays: the JWKS parsed and the key built (with
      // OpenSSL's public-key check) for the request.
      next = 0;
      const double ns = perCall(rsa ? 20 : distinct / 4, [&] {
        headers.back().second = bearers[next++];
        const jwt::Authenticator fresh({jwt_rule});
        fresh.authenticate(headers, "", now, out);
        request.auth = out.auth();
        bad += policies.evaluate(request).allowed ? 0 : 1;
      });
      print(alg, "first-seen token, no cached key + decision", ns, policy_only);
    }
    headers.back().second = bearer;
    if (want("repeated")) {
      const double ns = perCall(20000, [&] {
        cached.authenticate(headers, "", now, out);
        request.auth = out.auth();
        bad += policies.evaluate(request).allowed ? 0 : 1;
      });
      print(alg, "repeated token (cache hit) + decision", ns, policy_only);
    }
    if (want("none")) {
      std::vector<std::pair<std::string_view, std::string_view>> no_token(headers.begin(),
                                                                          headers.end() - 1);
      const double ns = perCall(20000, [&] {
        cached.authenticate(no_token, "", now, out);
        request.auth = out.auth();
        bad += policies.evaluate(request).allowed ? 1 : 0;
      });
      print(alg, "no token (rules apply) + decision", ns, policy_only);
    }
  }
  if (bad != 0) {
    std::fprintf(stderr, "unexpected decision (%d)\n", bad);
    return 1;
  }
  return 0;
}
