// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Istio's RequestAuthentication for one workload: every jwtRule of every RequestAuthentication
// that selects it (root namespace, its namespace without selector, and matching selectors, all
// combined as Istio does), compiled once per state with its JWKS parsed (the key cache), then
// asked once per HTTP request:
// - no token in any rule's locations: the request passes without a request principal;
// - a token: its issuer picks the rule (Envoy's issuer-aware extraction); an unknown issuer, a bad
//   token, or a rule whose keys could not be had (jwks_error, unparsable JWKS) is refused (401);
//   with several tokens each must be valid (stricter than Envoy's any-of, which Istio leaves
//   unspecified) and the first gives the principal;
// - a valid token: principal "<iss>/<sub>", claims for the engine; the token's header is removed
//   unless forwardOriginalToken, and outputPayloadToHeader / outputClaimToHeaders are set. A
//   client's own copies of those output headers are always removed, so the app can trust them.

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "jwt/jwks.h"
#include "jwt/verify.h"
#include "model/model.h"
#include "policy/request.h"

namespace ferry::jwt {

struct Outcome {
  enum class Kind { kNoToken, kValid, kInvalid };
  Kind kind = Kind::kNoToken;
  std::string error;             // kInvalid: Envoy's message (the 401's body)
  std::string principal;         // kValid: "<iss>/<sub>"
  const Token* token = nullptr;  // kValid: the first token (in the verified-token cache)
  std::vector<std::string> remove_headers;
  std::vector<std::pair<std::string, std::string>> set_headers;

  // The engine's request.auth view (null unless kValid). Views into this Outcome.
  const policy::RequestAuth* auth() const { return kind == Kind::kValid ? &auth_ : nullptr; }

 private:
  friend class Authenticator;
  policy::RequestAuth auth_;
  std::shared_ptr<const void> pinned_;  // keeps the cache entry `token` points to alive
};

// Parsed JWKS by their text, shared by the authenticators built from one state.
using JwksCache = std::map<std::string, absl::StatusOr<std::shared_ptr<const Jwks>>>;

class Authenticator {
 public:
  // `cache`, when given, is consulted and filled so that a JWKS is parsed once.
  explicit Authenticator(std::vector<model::JwtRule> rules, JwksCache* cache = nullptr);

  bool empty() const { return rules_.empty(); }
  // `headers` as received (any case); `query` without '?'. `now` in seconds since the epoch.
  void authenticate(const std::vector<std::pair<std::string_view, std::string_view>>& headers,
                    std::string_view query, int64_t now, Outcome& out) const;
  // "issuer: reason" for each rule without usable keys (its tokens are refused).
  const std::vector<std::string>& keyErrors() const { return key_errors_; }

 private:
  struct Rule {
    model::JwtRule spec;
    std::shared_ptr<const Jwks> jwks;  // null: no usable keys
    std::string key_error;
  };
  // Tokens that passed every check with this authenticator's keys, by their text (Envoy's
  // jwt_cache): a client repeating its token costs a lookup and the time check, not a signature
  // verification. Bounded (first in, first out), sharded for the workers; a new state (new keys,
  // rotation) has a new, empty cache.
  // A token's text with its hash, computed once per request for both the shard and the map.
  struct Hashed {
    std::string_view text;
    size_t hash = 0;
    bool operator==(const Hashed& o) const { return text == o.text; }
  };
  struct ByHash {
    size_t operator()(const Hashed& h) const { return h.hash; }
  };
  struct Verified {
    std::string text;
    size_t hash = 0;
    Token token;  // views into `text`
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<Hashed, std::shared_ptr<const Verified>, ByHash> by_text;
    std::deque<std::shared_ptr<const Verified>> order;
  };
  static constexpr size_t kCachedPerShard = 64;

  const Rule* ruleFor(std::string_view issuer) const;
  Shard& shardFor(size_t hash) const;
  std::shared_ptr<const Verified> cached(const Hashed& token) const;
  void remember(std::shared_ptr<const Verified> verified) const;

  std::vector<Rule> rules_;
  std::vector<std::string> key_errors_;
  mutable std::array<Shard, 8> cache_;
};

// The jwtRules that apply to `workload`, in a stable order (root namespace first).
std::vector<model::JwtRule> rulesFor(const std::vector<model::RequestAuthentication>& all,
                                     const model::Workload& workload,
                                     const std::string& root_namespace);

}  // namespace ferry::jwt
