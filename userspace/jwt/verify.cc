// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "jwt/verify.h"

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "jwt/base64url.h"

namespace ferry::jwt {
namespace {

using nlohmann::json;

absl::Status unauthenticated(std::string_view message) {
  return absl::UnauthenticatedError(std::string(message));
}

// Nesting is bounded before parsing (the parser and the claim walk recurse).
bool depthWithin(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      escaped = !escaped && c == '\\';
      in_string = escaped || c != '"';
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) {
        return false;
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

// A JSON object whose members all have distinct names, at every level: a duplicate `sub` or
// `iss` would be read differently by different parsers.
std::optional<json> strictObject(std::string_view text) {
  if (!depthWithin(text, kMaxClaimDepth + 2)) {
    return std::nullopt;
  }
  std::vector<std::vector<std::string>> names;
  bool duplicate = false;
  json::parser_callback_t cb = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      names.emplace_back();
    } else if (event == json::parse_event_t::object_end && !names.empty()) {
      names.pop_back();
    } else if (event == json::parse_event_t::key && !names.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      for (const auto& seen : names.back()) {
        duplicate = duplicate || seen == key;
      }
      names.back().push_back(key);
    }
    return true;
  };
  json doc = json::parse(text, cb, /*allow_exceptions=*/false);
  if (duplicate || doc.is_discarded() || !doc.is_object()) {
    return std::nullopt;
  }
  return doc;
}

void flatten(const std::string& path, const json& value, int depth, std::vector<Claim>& out) {
  if (value.is_string()) {
    out.push_back({path, value.get<std::string>(), true});
  } else if (value.is_array()) {
    for (const auto& item : value) {
      if (item.is_string()) {
        out.push_back({path, item.get<std::string>(), true});
      }
    }
  } else if (value.is_object() && depth < kMaxClaimDepth) {
    for (const auto& [name, member] : value.items()) {
      flatten(path + "][" + name, member, depth + 1, out);
    }
  } else if (value.is_number() || value.is_boolean()) {
    out.push_back({path, value.dump(), false});
  }
}

// A NumericDate (RFC 7519): a JSON number, possibly fractional.
bool numericDate(const json& payload, const char* name, bool& has, int64_t& out) {
  auto it = payload.find(name);
  if (it == payload.end()) {
    return true;
  }
  if (!it->is_number() ||
      (it->is_number_float() && !(it->get<double>() > -1e15 && it->get<double>() < 1e15))) {
    return false;
  }
  has = true;
  out = it->is_number_float() ? static_cast<int64_t>(it->get<double>()) : it->get<int64_t>();
  return true;
}

const EVP_MD* digestFor(Alg alg) {
  switch (alg) {
    case Alg::kRS256:
    case Alg::kPS256:
    case Alg::kES256:
      return EVP_sha256();
    case Alg::kRS384:
    case Alg::kPS384:
    case Alg::kES384:
      return EVP_sha384();
    default:
      return EVP_sha512();
  }
}

// JWS ECDSA signatures are r || s, fixed width; OpenSSL verifies DER.
std::optional<std::string> ecdsaDer(const std::string& raw, size_t width) {
  if (raw.size() != 2 * width) {
    return std::nullopt;
  }
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(p, width, nullptr);
  BIGNUM* s = BN_bin2bn(p + width, width, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) {
    return std::nullopt;
  }
  std::string out(reinterpret_cast<char*>(der), len);
  OPENSSL_free(der);
  return out;
}

bool verifyWith(const Key& key, const Token& token) {
  std::string der;
  const std::string* sig = &token.signature;
  if (token.alg == Alg::kES256 || token.alg == Alg::kES384) {
    auto converted = ecdsaDer(token.signature, token.alg == Alg::kES256 ? 32 : 48);
    if (!converted) {
      return false;
    }
    der = *std::move(converted);
    sig = &der;
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx ||
      EVP_DigestVerifyInit(ctx.get(), &pctx, digestFor(token.alg), nullptr, key.pkey.get()) != 1) {
    return false;
  }
  if (token.alg == Alg::kPS256 || token.alg == Alg::kPS384 || token.alg == Alg::kPS512) {
    // RFC 7518 3.5: MGF1 with the same hash, salt as long as the hash.
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, digestFor(token.alg)) != 1) {
      return false;
    }
  } else if (key.type == KeyType::kRsa &&
             EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()),
                          sig->size(),
                          reinterpret_cast<const unsigned char*>(token.signing_input.data()),
                          token.signing_input.size()) == 1;
}

}  // namespace

absl::StatusOr<Token> parseToken(std::string_view text) {
  if (text.size() > kMaxTokenBytes) {
    return unauthenticated("Jwt is too large");
  }
  const size_t dot1 = text.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : text.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || text.find('.', dot2 + 1) != std::string_view::npos) {
    return unauthenticated(
        "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections");
  }
  Token token;
  token.signing_input = text.substr(0, dot2);
  token.payload_b64 = text.substr(dot1 + 1, dot2 - dot1 - 1);
  auto header_text = base64UrlDecode(text.substr(0, dot1));
  auto payload_text = base64UrlDecode(token.payload_b64);
  auto signature = base64UrlDecode(text.substr(dot2 + 1));
  if (!header_text || !payload_text || !signature) {
    return unauthenticated("Jwt is not base64url encoded");
  }
  token.signature = *std::move(signature);
  auto header = strictObject(*header_text);
  if (!header) {
    return unauthenticated("Jwt header is an invalid JSON");
  }
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string() || !algFromName(alg->get<std::string>())) {
    return unauthenticated("Jwt header [alg] is not supported");
  }
  token.alg = *algFromName(alg->get<std::string>());
  if (auto kid = header->find("kid"); kid != header->end()) {
    if (!kid->is_string()) {
      return unauthenticated("Jwt header [kid] is not a string");
    }
    token.kid = kid->get<std::string>();
  }
  if (header->contains("crit")) {
    return unauthenticated("Jwt header [crit] is not supported");
  }
  auto payload = strictObject(*payload_text);
  if (!payload) {
    return unauthenticated("Jwt payload is an invalid JSON");
  }
  for (auto [name, out] : {std::pair{"iss", &token.issuer}, std::pair{"sub", &token.subject},
                           std::pair{"azp", &token.presenter}}) {
    auto it = payload->find(name);
    if (it != payload->end() && !it->is_string()) {
      return unauthenticated(std::string("Jwt payload [") + name + "] is not a string");
    }
    if (it != payload->end()) {
      *out = it->get<std::string>();
    }
  }
  if (auto aud = payload->find("aud"); aud != payload->end()) {
    if (aud->is_string()) {
      token.audiences.push_back(aud->get<std::string>());
    } else if (aud->is_array()) {
      for (const auto& a : *aud) {
        if (!a.is_string()) {
          return unauthenticated("Jwt payload [aud] is not a string or a list of strings");
        }
        token.audiences.push_back(a.get<std::string>());
      }
    } else {
      return unauthenticated("Jwt payload [aud] is not a string or a list of strings");
    }
  }
  if (!numericDate(*payload, "exp", token.has_exp, token.exp) ||
      !numericDate(*payload, "nbf", token.has_nbf, token.nbf)) {
    return unauthenticated("Jwt payload [exp] or [nbf] is not a number");
  }
  for (const auto& [name, value] : payload->items()) {
    flatten(name, value, 0, token.claims);
  }
  return token;
}

absl::Status checkClaims(const Token& token, const std::vector<std::string>& audiences,
                         int64_t now) {
  if (token.has_exp && now > token.exp + kClockSkewSeconds) {
    return unauthenticated("Jwt is expired");
  }
  if (token.has_nbf && now + kClockSkewSeconds < token.nbf) {
    return unauthenticated("Jwt not yet valid");
  }
  if (!audiences.empty()) {
    bool allowed = false;
    for (const auto& a : token.audiences) {
      for (const auto& want : audiences) {
        allowed = allowed || a == want;
      }
    }
    if (!allowed) {
      return unauthenticated("Audiences in Jwt are not allowed");
    }
  }
  return absl::OkStatus();
}

absl::Status checkSignature(const Token& token, const Jwks& jwks) {
  bool any_key = false;
  for (const Key& key : jwks.keys) {
    if ((!token.kid.empty() && !key.kid.empty() && key.kid != token.kid) ||
        !keyAccepts(key, token.alg)) {
      continue;
    }
    any_key = true;
    if (verifyWith(key, token)) {
      return absl::OkStatus();
    }
  }
  return unauthenticated(any_key ? "Jwt verification fails"
                                 : "Jwks doesn't have key to match kid or alg from Jwt");
}

}  // namespace ferry::jwt
