// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Test keys and tokens made with OpenSSL: a key pair, its public JWK, and JWS compact tokens
// signed with it (or with anything else a hostile row needs).

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "jwt/base64url.h"

namespace ferry::jwt::testing {

class TestKey {
 public:
  enum class Type { kRsa, kP256, kP384 };

  explicit TestKey(Type type, std::string kid = "") : type_(type), kid_(std::move(kid)) {
    EVP_PKEY* k = type == Type::kRsa ? EVP_RSA_gen(2048)
                                     : EVP_EC_gen(type == Type::kP256 ? "P-256" : "P-384");
    if (k == nullptr) {
      throw std::runtime_error("key generation failed");
    }
    pkey_.reset(k, EVP_PKEY_free);
  }

  // The public JWK; `alg` is added when non-empty.
  nlohmann::json jwk(const std::string& alg = "") const {
    nlohmann::json j;
    if (type_ == Type::kRsa) {
      j = {{"kty", "RSA"}, {"n", bn(OSSL_PKEY_PARAM_RSA_N)}, {"e", bn(OSSL_PKEY_PARAM_RSA_E)}};
    } else {
      j = {{"kty", "EC"},
           {"crv", type_ == Type::kP256 ? "P-256" : "P-384"},
           {"x", bn(OSSL_PKEY_PARAM_EC_PUB_X, width())},
           {"y", bn(OSSL_PKEY_PARAM_EC_PUB_Y, width())}};
    }
    if (!kid_.empty()) {
      j["kid"] = kid_;
    }
    if (!alg.empty()) {
      j["alg"] = alg;
    }
    return j;
  }
  std::string jwks(const std::string& alg = "") const {
    return nlohmann::json{{"keys", {jwk(alg)}}}.dump();
  }
  std::string publicPem() const {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PUBKEY(bio.get(), pkey_.get());
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, len);
  }

  // A token with this key: header {alg, kid}, `payload` as given.
  std::string sign(const std::string& alg, const nlohmann::json& payload) const {
    nlohmann::json header = {{"alg", alg}, {"typ", "JWT"}};
    if (!kid_.empty()) {
      header["kid"] = kid_;
    }
    return signRaw(header.dump(), payload.dump(), alg);
  }
  // Header and payload given as text (duplicate members and such).
  std::string signRaw(const std::string& header, const std::string& payload,
                      const std::string& alg) const {
    std::string input = base64UrlEncode(header) + "." + base64UrlEncode(payload);
    return input + "." + base64UrlEncode(signature(alg, input));
  }

 private:
  int width() const { return type_ == Type::kP256 ? 32 : 48; }

  std::string bn(const char* name, int pad = 0) const {
    BIGNUM* b = nullptr;
    EVP_PKEY_get_bn_param(pkey_.get(), name, &b);
    std::string out(pad > 0 ? pad : BN_num_bytes(b), '\0');
    BN_bn2binpad(b, reinterpret_cast<unsigned char*>(out.data()), out.size());
    BN_free(b);
    return base64UrlEncode(out);
  }

  std::string signature(const std::string& alg, const std::string& input) const {
    const EVP_MD* md = alg.ends_with("256")   ? EVP_sha256()
                       : alg.ends_with("384") ? EVP_sha384()
                                              : EVP_sha512();
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_PKEY_CTX* pctx = nullptr;
    EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, pkey_.get());
    if (alg.starts_with("PS")) {
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    size_t len = 0;
    EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    sig.resize(len);
    if (type_ == Type::kRsa) {
      return sig;
    }
    // DER -> r || s
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, sig.size());
    std::string raw(2 * width(), '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), width());
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + width(),
                 width());
    ECDSA_SIG_free(es);
    return raw;
  }

  Type type_;
  std::string kid_;
  std::shared_ptr<EVP_PKEY> pkey_;
};

// HS256 over `input` with `secret`: the algorithm-confusion attack's signature.
inline std::string hs256Token(const std::string& header, const std::string& payload,
                              const std::string& secret) {
  std::string input = base64UrlEncode(header) + "." + base64UrlEncode(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), secret.size(),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + base64UrlEncode(std::string(reinterpret_cast<char*>(mac), len));
}

}  // namespace ferry::jwt::testing
