// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "jwt/jwks.h"

#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "jwt/base64url.h"

namespace ferry::jwt {
namespace {

struct AlgInfo {
  Alg alg;
  std::string_view name;
};
constexpr AlgInfo kAlgs[] = {
    {Alg::kRS256, "RS256"}, {Alg::kRS384, "RS384"}, {Alg::kRS512, "RS512"}, {Alg::kPS256, "PS256"},
    {Alg::kPS384, "PS384"}, {Alg::kPS512, "PS512"}, {Alg::kES256, "ES256"}, {Alg::kES384, "ES384"},
};

using ParamBld = std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)>;
using Params = std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;
using Bn = std::unique_ptr<BIGNUM, decltype(&BN_free)>;

// A verification context for `alg` with `pkey`, as jwks.h describes; null if OpenSSL refuses.
std::shared_ptr<EVP_PKEY_CTX> prepareVerifier(EVP_PKEY* pkey, Alg alg) {
  std::shared_ptr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr),
                                    EVP_PKEY_CTX_free);
  const EVP_MD* md = digestOf(alg);
  if (!ctx || md == nullptr || EVP_PKEY_verify_init(ctx.get()) != 1) {
    return nullptr;
  }
  bool ok = true;
  switch (alg) {
    case Alg::kPS256:
    case Alg::kPS384:
    case Alg::kPS512:
      // RFC 7518 3.5: MGF1 with the same hash, salt as long as the hash.
      ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_DIGEST) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md) == 1;
      break;
    case Alg::kRS256:
    case Alg::kRS384:
    case Alg::kRS512:
      ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1;
      break;
    default:
      break;
  }
  if (!ok || EVP_PKEY_CTX_set_signature_md(ctx.get(), md) != 1) {
    return nullptr;
  }
  return ctx;
}

absl::StatusOr<std::string> member(const nlohmann::json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("member '", name, "' missing or not a string"));
  }
  auto bytes = base64UrlDecode(it->get<std::string>());
  if (!bytes || bytes->empty()) {
    return absl::InvalidArgumentError(absl::StrCat("member '", name, "' is not base64url"));
  }
  return *std::move(bytes);
}

absl::StatusOr<std::shared_ptr<EVP_PKEY>> fromParams(const char* type, OSSL_PARAM_BLD* bld) {
  Params params(OSSL_PARAM_BLD_to_param(bld), OSSL_PARAM_free);
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return absl::InvalidArgumentError("not a valid public key");
  }
  std::shared_ptr<EVP_PKEY> pkey(raw, EVP_PKEY_free);
  PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, raw, nullptr), EVP_PKEY_CTX_free);
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return absl::InvalidArgumentError("public key check failed");
  }
  return pkey;
}

absl::StatusOr<Key> rsaKey(const nlohmann::json& jwk) {
  auto n = member(jwk, "n");
  auto e = member(jwk, "e");
  if (!n.ok() || !e.ok()) {
    return n.ok() ? e.status() : n.status();
  }
  Bn bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()), n->size(), nullptr),
          BN_free);
  Bn bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()), e->size(), nullptr),
          BN_free);
  if (!bn_n || !bn_e || BN_num_bits(bn_n.get()) < kMinRsaBits ||
      BN_num_bits(bn_n.get()) > kMaxRsaBits || BN_num_bits(bn_e.get()) < 2 ||
      BN_num_bits(bn_e.get()) > 64 || !BN_is_odd(bn_e.get())) {
    return absl::InvalidArgumentError(
        absl::StrCat("RSA key: modulus must have ", kMinRsaBits, " to ", kMaxRsaBits,
                     " bits and the exponent be odd and at most 64 bits"));
  }
  ParamBld bld(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return absl::InternalError("out of memory");
  }
  auto pkey = fromParams("RSA", bld.get());
  if (!pkey.ok()) {
    return pkey.status();
  }
  Key key;
  key.type = KeyType::kRsa;
  key.pkey = *std::move(pkey);
  return key;
}

absl::StatusOr<Key> ecKey(const nlohmann::json& jwk) {
  auto crv = jwk.find("crv");
  if (crv == jwk.end() || !crv->is_string()) {
    return absl::InvalidArgumentError("EC key: member 'crv' missing");
  }
  Key key;
  size_t size = 0;
  const char* group = nullptr;
  if (*crv == "P-256") {
    key.type = KeyType::kEcP256;
    size = 32;
    group = "prime256v1";
  } else if (*crv == "P-384") {
    key.type = KeyType::kEcP384;
    size = 48;
    group = "secp384r1";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("EC key: curve ", crv->dump(), " is not supported (P-256, P-384)"));
  }
  auto x = member(jwk, "x");
  auto y = member(jwk, "y");
  if (!x.ok() || !y.ok()) {
    return x.ok() ? y.status() : x.status();
  }
  if (x->size() != size || y->size() != size) {
    return absl::InvalidArgumentError(absl::StrCat("EC key: x and y must be ", size, " bytes"));
  }
  std::string point = "\x04" + *x + *y;
  ParamBld bld(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return absl::InternalError("out of memory");
  }
  auto pkey = fromParams("EC", bld.get());
  if (!pkey.ok()) {
    return pkey.status();
  }
  key.pkey = *std::move(pkey);
  return key;
}

}  // namespace

std::optional<Alg> algFromName(std::string_view name) {
  for (const auto& a : kAlgs) {
    if (a.name == name) {
      return a.alg;
    }
  }
  return std::nullopt;
}

std::string_view algName(Alg alg) {
  for (const auto& a : kAlgs) {
    if (a.alg == alg) {
      return a.name;
    }
  }
  return "?";
}

const EVP_MD* digestOf(Alg alg) {
  static const EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static const EVP_MD* const sha384 = EVP_MD_fetch(nullptr, "SHA384", nullptr);
  static const EVP_MD* const sha512 = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  switch (alg) {
    case Alg::kRS256:
    case Alg::kPS256:
    case Alg::kES256:
      return sha256;
    case Alg::kRS384:
    case Alg::kPS384:
    case Alg::kES384:
      return sha384;
    default:
      return sha512;
  }
}

bool keyAccepts(const Key& key, Alg alg) {
  if (key.alg && *key.alg != alg) {
    return false;
  }
  switch (alg) {
    case Alg::kES256:
      return key.type == KeyType::kEcP256;
    case Alg::kES384:
      return key.type == KeyType::kEcP384;
    default:
      return key.type == KeyType::kRsa;
  }
}

absl::StatusOr<std::shared_ptr<const Jwks>> parseJwks(std::string_view json) {
  if (json.size() > kMaxJwksBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("JWKS is ", json.size(), " bytes (at most ", kMaxJwksBytes, ")"));
  }
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array()) {
    return absl::InvalidArgumentError("JWKS is not a JSON object with a \"keys\" list");
  }
  const auto& keys = doc["keys"];
  if (keys.size() > kMaxJwksKeys) {
    return absl::InvalidArgumentError(
        absl::StrCat("JWKS has ", keys.size(), " keys (at most ", kMaxJwksKeys, ")"));
  }
  auto out = std::make_shared<Jwks>();
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto& jwk = keys[i];
    if (!jwk.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat("keys[", i, "]: not an object"));
    }
    auto kty = jwk.find("kty");
    auto use = jwk.find("use");
    if (kty == jwk.end() || !kty->is_string() || (*kty != "RSA" && *kty != "EC") ||
        (use != jwk.end() && *use != "sig")) {
      continue;  // not a public signature key Ferry verifies with
    }
    absl::StatusOr<Key> key = *kty == "RSA" ? rsaKey(jwk) : ecKey(jwk);
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("keys[", i, "]: ", key.status().message()));
    }
    if (auto kid = jwk.find("kid"); kid != jwk.end()) {
      if (!kid->is_string()) {
        return absl::InvalidArgumentError(absl::StrCat("keys[", i, "]: kid is not a string"));
      }
      key->kid = kid->get<std::string>();
    }
    if (auto alg = jwk.find("alg"); alg != jwk.end()) {
      key->alg = alg->is_string() ? algFromName(alg->get<std::string>()) : std::nullopt;
      if (!key->alg || !keyAccepts(*key, *key->alg)) {
        return absl::InvalidArgumentError(absl::StrCat("keys[", i, "]: alg ", alg->dump(),
                                                       " does not fit a ", kty->get<std::string>(),
                                                       " key"));
      }
    }
    for (const auto& a : kAlgs) {
      if (keyAccepts(*key, a.alg)) {
        key->verifiers[static_cast<size_t>(a.alg)] = prepareVerifier(key->pkey.get(), a.alg);
        if (!key->verifiers[static_cast<size_t>(a.alg)]) {
          return absl::InternalError(absl::StrCat("keys[", i, "]: OpenSSL cannot verify ",
                                                  std::string(a.name), " with it"));
        }
      }
    }
    out->keys.push_back(*std::move(key));
  }
  if (out->keys.empty()) {
    return absl::InvalidArgumentError("JWKS has no RSA or EC (P-256, P-384) signature key");
  }
  return std::shared_ptr<const Jwks>(std::move(out));
}

}  // namespace ferry::jwt
