// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "jwt/base64url.h"

#include <array>
#include <cstdint>

namespace ferry::jwt {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> makeTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) {
    v = -1;
  }
  for (size_t i = 0; i < kAlphabet.size(); ++i) {
    t[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
  }
  return t;
}
constexpr std::array<int8_t, 256> kTable = makeTable();

}  // namespace

std::optional<std::string> base64UrlDecode(std::string_view in) {
  if (in.size() % 4 == 1) {
    return std::nullopt;
  }
  // Four characters (24 bits) to three bytes at a time into a buffer sized once; an invalid
  // character makes its group's accumulator negative.
  std::string out(in.size() / 4 * 3 + (in.size() % 4 == 0 ? 0 : in.size() % 4 - 1), '\0');
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  const auto* src = reinterpret_cast<const unsigned char*>(in.data());
  const size_t whole = in.size() / 4 * 4;
  for (size_t i = 0; i < whole; i += 4, dst += 3) {
    const int32_t acc = kTable[src[i]] * (1 << 18) + kTable[src[i + 1]] * (1 << 12) +
                        kTable[src[i + 2]] * (1 << 6) + kTable[src[i + 3]];
    if ((kTable[src[i]] | kTable[src[i + 1]] | kTable[src[i + 2]] | kTable[src[i + 3]]) < 0) {
      return std::nullopt;
    }
    dst[0] = static_cast<unsigned char>(acc >> 16);
    dst[1] = static_cast<unsigned char>(acc >> 8);
    dst[2] = static_cast<unsigned char>(acc);
  }
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = whole; i < in.size(); ++i) {
    const int8_t v = kTable[src[i]];
    if (v < 0) {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *dst++ = static_cast<unsigned char>((acc >> bits) & 0xff);
    }
  }
  // Leftover bits must be zero: otherwise two encodings would decode to the same bytes.
  if ((acc & ((1u << bits) - 1)) != 0) {
    return std::nullopt;
  }
  return out;
}

std::string base64UrlEncode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    acc = (acc << 8) | static_cast<uint8_t>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) {
    out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3f]);
  }
  return out;
}

}  // namespace ferry::jwt
