// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "jwt/verify.h"

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

// One pass over the text before parsing: nesting bounded (the parser and the claim walk recurse),
// and the object member names counted (a string followed by ':' in valid JSON is a name).
bool scanText(std::string_view text, int max_depth, size_t& names) {
  int depth = 0;
  bool in_string = false, escaped = false;
  names = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      // A string ends at a quote no backslash escapes (the parser's reading of valid JSON: an
      // undercount here would hide a duplicate name).
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
        const size_t next = text.find_first_not_of(" \t\r\n", i + 1);
        names += next != std::string_view::npos && text[next] == ':';
      }
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

// The members of every object in `value`, at every level.
size_t memberCount(const json& value) {
  size_t n = value.is_object() ? value.size() : 0;
  if (value.is_structured()) {
    for (const auto& item : value) {
      n += item.is_structured() ? memberCount(item) : 0;
    }
  }
  return n;
}

// A JSON object whose members all have distinct names, at every level: a duplicate `sub` or
// `iss` would be read differently by different parsers. The parsed tree keeps one member per
// name, so it has as many members as the text has names exactly when no object repeats one.
std::optional<json> strictObject(std::string_view text) {
  size_t names = 0;
  if (!scanText(text, kMaxClaimDepth + 2, names)) {
    return std::nullopt;
  }
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || memberCount(doc) != names) {
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

// The signature over the digest of the signing input, with the key's prepared context for the
// algorithm duplicated (a context is not shared between threads while it verifies).
bool verifyWith(const Key& key, const Token& token) {
  EVP_PKEY_CTX* prepared = key.verifiers[static_cast<size_t>(token.alg)].get();
  if (prepared == nullptr) {
    return false;
  }
  std::string der;
  std::string_view sig = token.signature;
  if (token.alg == Alg::kES256 || token.alg == Alg::kES384) {
    auto converted = ecdsaRawToDer(token.signature);
    if (!converted || token.signature.size() != (token.alg == Alg::kES256 ? 64u : 96u)) {
      return false;
    }
    der = *std::move(converted);
    sig = der;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(token.signing_input.data(), token.signing_input.size(), digest, &digest_len,
                 digestOf(token.alg), nullptr) != 1) {
    return false;
  }
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_dup(prepared),
                                                                  EVP_PKEY_CTX_free);
  return ctx && EVP_PKEY_verify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()),
                                sig.size(), digest, digest_len) == 1;
}

}  // namespace

std::optional<std::string> ecdsaRawToDer(std::string_view raw) {
  const size_t width = raw.size() / 2;
  if (raw.size() % 2 != 0 || width == 0 || width > 48) {
    return std::nullopt;
  }
  // ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 3279): each integer without
  // leading zero bytes, with one 0x00 before a high first bit; short-form lengths suffice (at
  // most 2 * (2 + 49) bytes).
  auto integer = [](std::string_view half, std::string& out) {
    while (half.size() > 1 && half.front() == '\0') {
      half.remove_prefix(1);
    }
    const bool pad = (static_cast<unsigned char>(half.front()) & 0x80) != 0;
    out.push_back(0x02);
    out.push_back(static_cast<char>(half.size() + (pad ? 1 : 0)));
    if (pad) {
      out.push_back('\0');
    }
    out.append(half);
  };
  std::string body;
  body.reserve(2 * (width + 3));
  integer(raw.substr(0, width), body);
  integer(raw.substr(width), body);
  std::string der;
  der.reserve(body.size() + 2);
  der.push_back(0x30);
  der.push_back(static_cast<char>(body.size()));
  der += body;
  return der;
}

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
  std::optional<Alg> known;
  if (alg != header->end() && alg->is_string()) {
    known = algFromName(alg->get_ref<const std::string&>());
  }
  if (!known) {
    return unauthenticated("Jwt header [alg] is not supported");
  }
  token.alg = *known;
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
