// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// JSON Web Key Sets (RFC 7517) parsed into OpenSSL public keys once per JWKS version, so that a
// request's verification never parses a key. Only public signature keys of the kinds Istio
// accepts for asymmetric JWTs: RSA (RS256/384/512, PS256/384/512) and EC P-256/P-384
// (ES256/ES384). Symmetric ("oct") and other keys are skipped: Ferry's JWKS come from
// manifests and URLs, never secrets, and skipping them keeps HS256-with-a-public-key
// ("algorithm confusion") impossible by construction.

#include <openssl/evp.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::jwt {

enum class Alg { kRS256, kRS384, kRS512, kPS256, kPS384, kPS512, kES256, kES384 };
inline constexpr size_t kAlgCount = 8;

// "RS256" -> kRS256; nullopt for every other name ("none", "HS256", "EdDSA", ...).
std::optional<Alg> algFromName(std::string_view name);
std::string_view algName(Alg alg);

enum class KeyType { kRsa, kEcP256, kEcP384 };

// The digest of `alg`, fetched from OpenSSL's default provider once per process (an
// EVP_sha256()-style constant makes OpenSSL 3 fetch it again on every use).
const EVP_MD* digestOf(Alg alg);

struct Key {
  std::string kid;         // empty when the JWK has none
  std::optional<Alg> alg;  // the JWK's `alg`, when given: the only algorithm it verifies
  KeyType type = KeyType::kRsa;
  std::shared_ptr<EVP_PKEY> pkey;
  // Per algorithm the key accepts, a verification context made once with the JWKS (signature
  // algorithm fetched, padding and digest set): a token's check duplicates it and verifies the
  // digest, so no request pays OpenSSL's method fetches. Null for an algorithm the key refuses.
  std::array<std::shared_ptr<EVP_PKEY_CTX>, kAlgCount> verifiers;
};

// Whether `key` may verify a token signed with `alg`: the algorithm family must match the key
// type (RS/PS: RSA; ES256: P-256; ES384: P-384), and the JWK's own `alg`, when set, must equal it.
bool keyAccepts(const Key& key, Alg alg);

struct Jwks {
  std::vector<Key> keys;
};

inline constexpr size_t kMaxJwksBytes = 64 * 1024;
inline constexpr size_t kMaxJwksKeys = 32;
inline constexpr int kMinRsaBits = 2048;
inline constexpr int kMaxRsaBits = 8192;

// Parses a JWKS document ({"keys": [...]}). Refused: not JSON, over the bounds above, a key of a
// supported type with bad members (wrong lengths, a point not on its curve, a short RSA key),
// and a set with no usable key. Unsupported key types and keys with `use` other than "sig" are
// skipped.
absl::StatusOr<std::shared_ptr<const Jwks>> parseJwks(std::string_view json);

}  // namespace ferry::jwt
