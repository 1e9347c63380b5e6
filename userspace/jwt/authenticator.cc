// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "jwt/authenticator.h"

#include <algorithm>

#include "policy/text.h"

namespace ferry::jwt {
namespace {

constexpr std::string_view kDefaultHeader = "authorization";
constexpr std::string_view kDefaultPrefix = "Bearer ";
constexpr std::string_view kDefaultParam = "access_token";

bool startsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && text::equalsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

std::string lower(std::string_view s) {
  return text::toLowerAscii(s);
}

// A found token and where: the header (lower-cased) it came from, or empty for a parameter.
struct Found {
  std::string_view token;
  std::string header;
};

void fromHeaders(const model::JwtRule& rule,
                 const std::vector<std::pair<std::string_view, std::string_view>>& headers,
                 std::vector<Found>& out) {
  std::vector<model::JwtHeader> defaults;
  const auto* locations = &rule.from_headers;
  if (rule.from_headers.empty() && rule.from_params.empty()) {
    defaults.push_back({std::string(kDefaultHeader), std::string(kDefaultPrefix)});
    locations = &defaults;
  }
  for (const auto& loc : *locations) {
    for (const auto& [name, value] : headers) {
      if (!text::equalsIgnoreCase(name, loc.name) || !startsWithIgnoreCase(value, loc.prefix)) {
        continue;
      }
      std::string_view token = value.substr(loc.prefix.size());
      while (!token.empty() && token.front() == ' ') {
        token.remove_prefix(1);
      }
      out.push_back({token, lower(loc.name)});
    }
  }
}

void fromParams(const model::JwtRule& rule, std::string_view query, std::vector<Found>& out) {
  std::vector<std::string> defaults;
  const auto* names = &rule.from_params;
  if (rule.from_headers.empty() && rule.from_params.empty()) {
    defaults.emplace_back(kDefaultParam);
    names = &defaults;
  }
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    for (const auto& name : *names) {
      if (pair.substr(0, eq) == name) {
        out.push_back({pair.substr(eq + 1), ""});
      }
    }
  }
}

bool contains(const std::vector<Found>& all, const Found& f) {
  return std::any_of(all.begin(), all.end(),
                     [&](const Found& o) { return o.token == f.token && o.header == f.header; });
}

// outputClaimToHeaders names nested claims "outer.inner"; Token::claims uses "outer][inner".
std::string claimPath(std::string_view dotted) {
  std::string out;
  for (char c : dotted) {
    out += c == '.' ? std::string("][") : std::string(1, c);
  }
  return out;
}

}  // namespace

Authenticator::Authenticator(std::vector<model::JwtRule> rules, JwksCache* cache) {
  for (auto& spec : rules) {
    Rule r;
    r.spec = std::move(spec);
    if (!r.spec.jwks_error.empty()) {
      r.key_error = r.spec.jwks_error;
    } else {
      absl::StatusOr<std::shared_ptr<const Jwks>> jwks;
      if (cache == nullptr) {
        jwks = parseJwks(r.spec.jwks);
      } else {
        auto it = cache->find(r.spec.jwks);
        if (it == cache->end()) {
          it = cache->emplace(r.spec.jwks, parseJwks(r.spec.jwks)).first;
        }
        jwks = it->second;
      }
      if (jwks.ok()) {
        r.jwks = *std::move(jwks);
      } else {
        r.key_error = std::string(jwks.status().message());
      }
    }
    if (!r.key_error.empty()) {
      key_errors_.push_back(text::cat(r.spec.issuer, ": ", r.key_error));
    }
    rules_.push_back(std::move(r));
  }
}

void Authenticator::authenticate(
    const std::vector<std::pair<std::string_view, std::string_view>>& headers,
    std::string_view query, int64_t now, Outcome& out) const {
  out = Outcome{};
  std::vector<Found> found;
  for (const Rule& r : rules_) {
    std::vector<Found> mine;
    fromHeaders(r.spec, headers, mine);
    fromParams(r.spec, query, mine);
    for (auto& f : mine) {
      if (!contains(found, f)) {
        found.push_back(std::move(f));
      }
    }
    if (!r.spec.output_payload_to_header.empty()) {
      out.remove_headers.push_back(lower(r.spec.output_payload_to_header));
    }
    for (const auto& c : r.spec.output_claim_to_headers) {
      out.remove_headers.push_back(lower(c.header));
    }
  }
  if (found.empty()) {
    return;
  }
  for (size_t i = 0; i < found.size(); ++i) {
    const Hashed key{found[i].token, std::hash<std::string_view>()(found[i].token)};
    std::shared_ptr<const Verified> verified = cached(key);
    const Rule* rule = nullptr;
    absl::Status st = absl::OkStatus();
    if (verified != nullptr) {
      // Verified before with these keys: only time moves on.
      rule = ruleFor(verified->token.issuer);
      st = checkClaims(verified->token, {}, now);
    } else {
      auto fresh = std::make_shared<Verified>();
      fresh->text = std::string(found[i].token);
      fresh->hash = key.hash;
      absl::StatusOr<Token> token = parseToken(fresh->text);
      if (!token.ok()) {
        out.kind = Outcome::Kind::kInvalid;
        out.error = std::string(token.status().message());
        return;
      }
      rule = ruleFor(token->issuer);
      if (rule == nullptr) {
        st = absl::UnauthenticatedError("Jwt issuer is not configured");
      } else if (!rule->jwks) {
        st = absl::UnauthenticatedError("Jwks remote fetch is failed");
      } else {
        st = checkClaims(*token, rule->spec.audiences, now);
        if (st.ok()) {
          st = checkSignature(*token, *rule->jwks);
        }
      }
      if (st.ok()) {
        fresh->token = *std::move(token);
        verified = std::move(fresh);
        remember(verified);
      }
    }
    if (!st.ok()) {
      out.kind = Outcome::Kind::kInvalid;
      out.error = std::string(st.message());
      return;
    }
    const Token* token = &verified->token;
    if (!found[i].header.empty() && !rule->spec.forward_original_token) {
      out.remove_headers.push_back(found[i].header);
    }
    if (!rule->spec.output_payload_to_header.empty()) {
      out.set_headers.emplace_back(rule->spec.output_payload_to_header,
                                   std::string(token->payload_b64));
    }
    for (const auto& c : rule->spec.output_claim_to_headers) {
      const std::string path = claimPath(c.claim);
      for (const Claim& claim : token->claims) {
        if (claim.path == path) {
          out.set_headers.emplace_back(c.header, claim.value);
          break;
        }
      }
    }
    if (i == 0) {
      out.token = token;
      out.pinned_ = verified;  // out.token points into it
    }
  }
  out.kind = Outcome::Kind::kValid;
  out.principal = text::cat(out.token->issuer, "/", out.token->subject);
  out.auth_.principal = out.principal;
  out.auth_.presenter = out.token->presenter;
  out.auth_.audiences.assign(out.token->audiences.begin(), out.token->audiences.end());
  for (const Claim& c : out.token->claims) {
    if (c.is_string) {
      out.auth_.claims.emplace_back(c.path, c.value);
    }
  }
}

const Authenticator::Rule* Authenticator::ruleFor(std::string_view issuer) const {
  for (const Rule& r : rules_) {
    if (r.spec.issuer == issuer) {
      return &r;
    }
  }
  return nullptr;
}

Authenticator::Shard& Authenticator::shardFor(size_t hash) const {
  return cache_[hash % cache_.size()];
}

std::shared_ptr<const Authenticator::Verified> Authenticator::cached(const Hashed& token) const {
  Shard& shard = shardFor(token.hash);
  std::lock_guard lock(shard.mu);
  auto it = shard.by_text.find(token);
  return it == shard.by_text.end() ? nullptr : it->second;
}

void Authenticator::remember(std::shared_ptr<const Verified> verified) const {
  Shard& shard = shardFor(verified->hash);
  std::lock_guard lock(shard.mu);
  if (!shard.by_text.emplace(Hashed{verified->text, verified->hash}, verified).second) {
    return;
  }
  shard.order.push_back(std::move(verified));
  if (shard.order.size() > kCachedPerShard) {
    shard.by_text.erase(Hashed{shard.order.front()->text, shard.order.front()->hash});
    shard.order.pop_front();
  }
}

std::vector<model::JwtRule> rulesFor(const std::vector<model::RequestAuthentication>& all,
                                     const model::Workload& workload,
                                     const std::string& root_namespace) {
  std::vector<model::JwtRule> out;
  for (bool root : {true, false}) {
    for (const auto& ra : all) {
      const bool applies_ns = root ? ra.key.ns == root_namespace
                                   : ra.key.ns == workload.key.ns && ra.key.ns != root_namespace;
      if (!applies_ns) {
        continue;
      }
      bool selected = true;
      if (ra.selector) {
        for (const auto& [k, v] : *ra.selector) {
          auto it = workload.labels.find(k);
          selected = selected && it != workload.labels.end() && it->second == v;
        }
      }
      if (selected) {
        out.insert(out.end(), ra.jwt_rules.begin(), ra.jwt_rules.end());
      }
    }
  }
  return out;
}

}  // namespace ferry::jwt
