// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Token verification: one row per token, valid ones for every algorithm Ferry accepts and the
// hostile ones (alg none, algorithm confusion, expiry, issuer, audience, size, encoding,
// duplicate claims, signature, kid), each with the exact outcome.
#include <openssl/bn.h>
#include <openssl/ecdsa.h>

#include <catch2/catch.hpp>
#include <functional>

#include "jwt/authenticator.h"
#include "jwt/base64url.h"
#include "token_signer.h"

namespace ferry::jwt::testing {
namespace {

using nlohmann::json;
constexpr int64_t kNow = 1'700'000'000;
constexpr const char* kIssuer = "https://issuer.example";

struct Keys {
  TestKey rsa{TestKey::Type::kRsa, "rsa-1"};
  TestKey p256{TestKey::Type::kP256, "ec-256"};
  TestKey p384{TestKey::Type::kP384, "ec-384"};
  TestKey other_rsa{TestKey::Type::kRsa, "rsa-1"};  // same kid, another key
  std::string jwks() const { return json{{"keys", {rsa.jwk(), p256.jwk(), p384.jwk()}}}.dump(); }
};
const Keys& keys() {
  static const Keys k;
  return k;
}

json claims(json extra = json::object()) {
  json c = {{"iss", kIssuer}, {"sub", "alice"}, {"aud", "api"}, {"exp", kNow + 600}};
  for (auto& [k, v] : extra.items()) {
    c[k] = v;
  }
  return c;
}

struct Row {
  const char* name;
  std::function<std::string()> token;
  const char* expect;  // "valid" or the 401 message
};

Outcome check(const std::string& token, std::vector<std::string> audiences = {"api"}) {
  model::JwtRule rule;
  rule.issuer = kIssuer;
  rule.audiences = std::move(audiences);
  rule.jwks = keys().jwks();
  Authenticator auth({rule});
  std::string value = "Bearer " + token;
  Outcome out;
  auth.authenticate({{"Authorization", value}}, "", kNow, out);
  return out;
}

std::vector<Row> rows() {
  const Keys& k = keys();
  std::vector<Row> r;
  for (const char* alg : {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}) {
    r.push_back({alg, [&k, alg] { return k.rsa.sign(alg, claims()); }, "valid"});
  }
  r.push_back({"ES256", [&k] { return k.p256.sign("ES256", claims()); }, "valid"});
  r.push_back({"ES384", [&k] { return k.p384.sign("ES384", claims()); }, "valid"});
  r.push_back({"alg none, empty signature",
               [] {
                 return base64UrlEncode(R"({"alg":"none"})") + "." +
                        base64UrlEncode(claims().dump()) + ".";
               },
               "Jwt header [alg] is not supported"});
  r.push_back({"alg None (case) refused",
               [] {
                 return base64UrlEncode(R"({"alg":"None"})") + "." +
                        base64UrlEncode(claims().dump()) + ".";
               },
               "Jwt header [alg] is not supported"});
  r.push_back({"HS256 signed with the RSA public key (PEM) as secret",
               [&k] {
                 return hs256Token(R"({"alg":"HS256","kid":"rsa-1"})", claims().dump(),
                                   k.rsa.publicPem());
               },
               "Jwt header [alg] is not supported"});
  r.push_back({"ES256 header over an RSA kid: the key type does not fit the algorithm",
               [&k] {
                 return k.p256.signRaw(R"({"alg":"ES256","kid":"rsa-1"})", claims().dump(),
                                       "ES256");
               },
               "Jwks doesn't have key to match kid or alg from Jwt"});
  r.push_back({"ES384 header with the P-256 key's kid",
               [&k] {
                 return k.p384.signRaw(R"({"alg":"ES384","kid":"ec-256"})", claims().dump(),
                                       "ES384");
               },
               "Jwks doesn't have key to match kid or alg from Jwt"});
  r.push_back(
      {"RS256 header, PS256 signature",
       [&k] { return k.rsa.signRaw(R"({"alg":"RS256","kid":"rsa-1"})", claims().dump(), "PS256"); },
       "Jwt verification fails"});
  r.push_back({"expired beyond the 60 s skew",
               [&k] {
                 return k.rsa.sign("RS256", claims({{"exp", kNow - 61}}));
               },
               "Jwt is expired"});
  r.push_back({"expired within the 60 s skew",
               [&k] {
                 return k.rsa.sign("RS256", claims({{"exp", kNow - 59}}));
               },
               "valid"});
  r.push_back({"nbf in the future beyond the skew",
               [&k] {
                 return k.rsa.sign("RS256", claims({{"nbf", kNow + 61}}));
               },
               "Jwt not yet valid"});
  r.push_back({"nbf in the future within the skew",
               [&k] {
                 return k.rsa.sign("RS256", claims({{"nbf", kNow + 59}}));
               },
               "valid"});
  r.push_back({"exp as a string",
               [&k] {
                 return k.rsa.sign("RS256", claims({{"exp", "9999999999"}}));
               },
               "Jwt payload [exp] or [nbf] is not a number"});
  r.push_back({"wrong issuer",
               [&k] {
                 return k.rsa.sign("RS256", claims({{"iss", "https://evil.example"}}));
               },
               "Jwt issuer is not configured"});
  r.push_back({"no issuer",
               [&k] {
                 json c = claims();
                 c.erase("iss");
                 return k.rsa.sign("RS256", c);
               },
               "Jwt issuer is not configured"});
  r.push_back({"wrong audience",
               [&k] {
                 return k.rsa.sign("RS256", claims({{"aud", "other"}}));
               },
               "Audiences in Jwt are not allowed"});
  r.push_back({"one of several audiences fits",
               [&k] {
                 return k.rsa.sign("RS256", claims({{"aud", {"x", "api"}}}));
               },
               "valid"});
  r.push_back({"oversized token",
               [&k] {
                 return k.rsa.sign("RS256", claims({{"pad", std::string(kMaxTokenBytes, 'a')}}));
               },
               "Jwt is too large"});
  r.push_back({"two dots missing", [] { return std::string("abc.def"); },
               "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"});
  r.push_back({"four sections", [&k] { return k.rsa.sign("RS256", claims()) + ".x"; },
               "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"});
  r.push_back({"base64 padding",
               [&k] {
                 std::string t = k.rsa.sign("RS256", claims());
                 return t.insert(t.find('.'), "==");
               },
               "Jwt is not base64url encoded"});
  r.push_back({"standard base64 alphabet ('+')",
               [&k] {
                 std::string t = k.rsa.sign("RS256", claims());
                 t[t.rfind('.') + 1] = '+';
                 return t;
               },
               "Jwt is not base64url encoded"});
  r.push_back({"stray bits in the last character",
               [] {
                 // "eyJ" + "hbGciOiJSUzI1NiJ9" is {"alg":"RS256"}; 'B' after a full group of 2
                 // leftover chars has non-zero unused bits.
                 return std::string("eyJhbGciOiJSUzI1NiJ9.eB.AA");
               },
               "Jwt is not base64url encoded"});
  r.push_back({"header not JSON", [] { return base64UrlEncode("{alg") + ".e30.AA"; },
               "Jwt header is an invalid JSON"});
  r.push_back({"duplicate sub claim",
               [&k] {
                 return k.rsa.signRaw(
                     R"({"alg":"RS256","kid":"rsa-1"})",
                     R"({"iss":"https://issuer.example","sub":"alice","sub":"admin","aud":"api"})",
                     "RS256");
               },
               "Jwt payload is an invalid JSON"});
  r.push_back({"duplicate nested member",
               [&k] {
                 return k.rsa.signRaw(
                     R"({"alg":"RS256","kid":"rsa-1"})",
                     R"({"iss":"https://issuer.example","sub":"a","aud":"api","o":{"x":1,"x":2}})",
                     "RS256");
               },
               "Jwt payload is an invalid JSON"});
  r.push_back({"duplicate member in an object inside a list",
               [&k] {
                 return k.rsa.signRaw(R"({"alg":"RS256","kid":"rsa-1"})",
                                      R"({"iss":"https://issuer.example","sub":"a","aud":"api",)"
                                      R"("l":[{"x":1},{"y":1,"y":2}]})",
                                      "RS256");
               },
               "Jwt payload is an invalid JSON"});
  r.push_back({"duplicate sub spelled with an escape and spaces before the colon",
               [&k] {
                 return k.rsa.signRaw(R"({"alg":"RS256","kid":"rsa-1"})",
                                      R"({"iss":"https://issuer.example","sub" :"alice",)"
                                      R"("aud":"api","s\u0075b"  :  "admin"})",
                                      "RS256");
               },
               "Jwt payload is an invalid JSON"});
  r.push_back({"distinct members, values and names holding quotes and colons",
               [&k] {
                 return k.rsa.signRaw(
                     R"({"alg":"RS256","kid":"rsa-1"})",
                     R"({"iss":"https://issuer.example","sub":"alice","n":"a\":b",)"
                     R"("aud":"api","exp":1700000600,"k\":":"\\",)"
                     R"("l":["x",{"m":"n:"}],"o":{"sub":"x"}})",
                     "RS256");
               },
               "valid"});
  r.push_back({"duplicate alg in the header",
               [&k] {
                 return k.rsa.signRaw(R"({"alg":"RS256","alg":"none","kid":"rsa-1"})",
                                      claims().dump(), "RS256");
               },
               "Jwt header is an invalid JSON"});
  r.push_back({"deeply nested payload",
               [&k] {
                 return k.rsa.signRaw(R"({"alg":"RS256","kid":"rsa-1"})",
                                      R"({"iss":"https://issuer.example","a":)" +
                                          std::string(40, '[') + std::string(40, ']') + "}",
                                      "RS256");
               },
               "Jwt payload is an invalid JSON"});
  r.push_back({"bad signature (one byte flipped)",
               [&k] {
                 std::string t = k.rsa.sign("RS256", claims());
                 auto sig = *base64UrlDecode(t.substr(t.rfind('.') + 1));
                 sig[10] ^= 1;
                 return t.substr(0, t.rfind('.') + 1) + base64UrlEncode(sig);
               },
               "Jwt verification fails"});
  r.push_back({"signed by another key with the same kid",
               [&k] { return k.other_rsa.sign("RS256", claims()); }, "Jwt verification fails"});
  r.push_back({"payload swapped under a valid signature",
               [&k] {
                 std::string t = k.rsa.sign("RS256", claims());
                 size_t d1 = t.find('.'), d2 = t.rfind('.');
                 return t.substr(0, d1 + 1) + base64UrlEncode(claims({{"sub", "admin"}}).dump()) +
                        t.substr(d2);
               },
               "Jwt verification fails"});
  r.push_back({"unknown kid",
               [] {
                 TestKey stranger(TestKey::Type::kRsa, "nobody");
                 return stranger.sign("RS256", claims());
               },
               "Jwks doesn't have key to match kid or alg from Jwt"});
  r.push_back({"ES256 signature of the wrong length",
               [&k] {
                 std::string t = k.p256.sign("ES256", claims());
                 auto sig = *base64UrlDecode(t.substr(t.rfind('.') + 1));
                 return t.substr(0, t.rfind('.') + 1) + base64UrlEncode(sig.substr(0, 63));
               },
               "Jwt verification fails"});
  r.push_back({"crit header refused",
               [&k] {
                 return k.rsa.signRaw(R"({"alg":"RS256","kid":"rsa-1","crit":["b64"]})",
                                      claims().dump(), "RS256");
               },
               "Jwt header [crit] is not supported"});
  return r;
}

TEST_CASE("JWT verification rows", "[jwt]") {
  auto all = rows();
  REQUIRE(all.size() >= 35);
  for (const auto& row : all) {
    SECTION(row.name) {
      Outcome out = check(row.token());
      if (std::string(row.expect) == "valid") {
        CHECK(out.error == "");
        REQUIRE(out.kind == Outcome::Kind::kValid);
        CHECK(out.principal == std::string(kIssuer) + "/alice");
      } else {
        CHECK(out.kind == Outcome::Kind::kInvalid);
        CHECK(out.error == row.expect);
        CHECK(out.auth() == nullptr);
      }
    }
  }
}

TEST_CASE("JWKS parsing refuses what cannot be a signature key", "[jwt]") {
  const Keys& k = keys();
  struct Case {
    const char* name;
    std::string jwks;
    const char* error;  // substring; "" means accepted
  };
  json short_rsa = k.rsa.jwk();
  short_rsa["n"] = base64UrlEncode(std::string(128, '\x81'));
  json off_curve = k.p256.jwk();
  off_curve["y"] = off_curve["x"];
  json short_x = k.p256.jwk();
  short_x["x"] = base64UrlEncode(std::string(31, '\x01'));
  json enc = k.rsa.jwk();
  enc["use"] = "enc";
  json many = {{"keys", json::array()}};
  for (size_t i = 0; i <= kMaxJwksKeys; ++i) {
    many["keys"].push_back(k.p256.jwk());
  }
  std::vector<Case> cases = {
      {"RSA, P-256 and P-384", k.jwks(), ""},
      {"not JSON", "{", "not a JSON object"},
      {"no keys member", "{}", "not a JSON object"},
      {"only an oct key", R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})", "no RSA or EC"},
      {"encryption key skipped", json{{"keys", {enc}}}.dump(), "no RSA or EC"},
      {"RSA modulus of 1024 bits", json{{"keys", {short_rsa}}}.dump(), "modulus"},
      {"EC point not on the curve", json{{"keys", {off_curve}}}.dump(), "keys[0]"},
      {"EC coordinate too short", json{{"keys", {short_x}}}.dump(), "32 bytes"},
      {"P-521 unsupported", R"({"keys":[{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}]})",
       "not supported"},
      {"RSA key claiming ES256", k.rsa.jwks("ES256"), "does not fit"},
      {"EC key claiming HS256", k.p256.jwks("HS256"), "does not fit"},
      {"too many keys", many.dump(), "at most"},
      {"too large", std::string(kMaxJwksBytes + 1, ' '), "bytes"},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      auto parsed = parseJwks(c.jwks);
      if (std::string(c.error).empty()) {
        REQUIRE(parsed.ok());
        CHECK((*parsed)->keys.size() == 3);
      } else {
        REQUIRE_FALSE(parsed.ok());
        CHECK_THAT(std::string(parsed.status().message()), Catch::Contains(c.error));
      }
    }
  }
}

TEST_CASE("a JWK's alg binds the key to that algorithm", "[jwt]") {
  const Keys& k = keys();
  auto jwks = parseJwks(k.rsa.jwks("PS256"));
  REQUIRE(jwks.ok());
  // Token views its text: keep the strings.
  const std::string rs_text = k.rsa.sign("RS256", claims());
  const std::string ps_text = k.rsa.sign("PS256", claims());
  auto rs = parseToken(rs_text);
  auto ps = parseToken(ps_text);
  REQUIRE(rs.ok());
  REQUIRE(ps.ok());
  CHECK(checkSignature(*rs, **jwks).message() ==
        "Jwks doesn't have key to match kid or alg from Jwt");
  CHECK(checkSignature(*ps, **jwks).ok());
}

TEST_CASE("base64url decoding is strict and round-trips", "[jwt]") {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    CHECK(base64UrlDecode(base64UrlEncode(s)) == s);
  }
  for (const char* bad : {"Zg==", "Z", "Zm9v YmFy", "Zm9v/", "Zh"}) {
    CAPTURE(bad);
    CHECK_FALSE(base64UrlDecode(bad).has_value());
  }
}

// Every length from 0 to 70 (whole 4-character groups and each tail), all 256 byte values, and
// one invalid character at every position of each encoding: refused wherever it is.
TEST_CASE("base64url decoding: every length, every byte, a bad character anywhere", "[jwt]") {
  std::string all(256, '\0');
  for (size_t i = 0; i < all.size(); ++i) {
    all[i] = static_cast<char>(i);
  }
  CHECK(base64UrlDecode(base64UrlEncode(all)) == all);
  size_t refused = 0, positions = 0, expected = 0;
  for (size_t len = 0; len <= 70; ++len) {
    std::string bytes;
    for (size_t i = 0; i < len; ++i) {
      bytes.push_back(static_cast<char>((i * 37 + len * 11) & 0xff));
    }
    const std::string encoded = base64UrlEncode(bytes);
    CAPTURE(len, encoded);
    CHECK(base64UrlDecode(encoded) == bytes);
    expected += 7 * ((len * 4 + 2) / 3);  // unpadded length of the encoding
    for (size_t at = 0; at < encoded.size(); ++at) {
      for (char bad : {'+', '/', '=', '.', ' ', '\0', '\x80'}) {
        std::string broken = encoded;
        broken[at] = bad;
        ++positions;
        refused += base64UrlDecode(broken).has_value() ? 0 : 1;
      }
    }
  }
  CHECK(positions == expected);
  CHECK(refused == positions);
}

// The hand-written r || s -> DER conversion against OpenSSL's own encoder, for widths of P-256 and
// P-384 and halves with leading zero bytes, a high first bit, all zeros and all ones.
TEST_CASE("ECDSA raw signatures convert to the DER OpenSSL writes", "[jwt]") {
  auto openssl = [](std::string_view raw) {
    const size_t w = raw.size() / 2;
    const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
    ECDSA_SIG* sig = ECDSA_SIG_new();
    ECDSA_SIG_set0(sig, BN_bin2bn(p, w, nullptr), BN_bin2bn(p + w, w, nullptr));
    unsigned char* der = nullptr;
    const int len = i2d_ECDSA_SIG(sig, &der);
    std::string out(reinterpret_cast<char*>(der), len);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    return out;
  };
  int rows = 0;
  for (size_t width : {size_t{32}, size_t{48}}) {
    for (unsigned char first : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      for (size_t zeros : {size_t{0}, size_t{1}, size_t{2}, width}) {
        std::string half(width, static_cast<char>(0xa5));
        half[0] = static_cast<char>(first);
        for (size_t i = 0; i < zeros; ++i) {
          half[i] = 0;
        }
        for (const std::string& raw : {half + half, half + std::string(width, '\xff')}) {
          CAPTURE(width, int(first), zeros);
          CHECK(ecdsaRawToDer(raw) == openssl(raw));
          ++rows;
        }
      }
    }
  }
  CHECK(rows == 80);
  for (std::string bad : {std::string(), std::string(63, 'a'), std::string(98, 'a')}) {
    CHECK_FALSE(ecdsaRawToDer(bad).has_value());
  }
}

}  // namespace
}  // namespace ferry::jwt::testing
