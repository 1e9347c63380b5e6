// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

// Character classes from RFC 9110/9112 and RFC 3986 as 256-entry tables, so every check on
// the data path is one load. Bytes >= 0x80 are only ever "obs-text" (allowed inside field
// values, nowhere else).
namespace ferry::http::chars {

enum : uint8_t {
  kTchar = 1 << 0,       // token character (RFC 9110 5.6.2)
  kFieldVchar = 1 << 1,  // VCHAR / obs-text (field values, reason phrases)
  kUnreserved = 1 << 2,  // RFC 3986 unreserved
  kPchar = 1 << 3,       // RFC 3986 pchar minus pct-encoded ('%' handled separately)
  kHex = 1 << 4,
  kRegName = 1 << 5,  // RFC 3986 reg-name characters (unreserved / sub-delims)
};

constexpr std::array<uint8_t, 256> makeTable() {
  std::array<uint8_t, 256> t{};
  constexpr std::string_view kTcharPunct = "!#$%&'*+-.^_`|~";
  constexpr std::string_view kSubDelims = "!$&'()*+,;=";
  for (int c = 0; c < 256; ++c) {
    uint8_t v = 0;
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    const bool sub = kSubDelims.find(static_cast<char>(c)) != std::string_view::npos;
    if (alpha || digit || kTcharPunct.find(static_cast<char>(c)) != std::string_view::npos) {
      v |= kTchar;
    }
    if ((c >= 0x21 && c <= 0x7e) || c >= 0x80) {
      v |= kFieldVchar;
    }
    const bool unreserved = alpha || digit || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      v |= kUnreserved;
    }
    if (unreserved || sub || c == ':' || c == '@') {
      v |= kPchar;
    }
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
      v |= kHex;
    }
    if (unreserved || sub) {
      v |= kRegName;
    }
    t[c] = v;
  }
  return t;
}

inline constexpr std::array<uint8_t, 256> kTable = makeTable();

inline constexpr bool is(char c, uint8_t cls) {
  return (kTable[static_cast<uint8_t>(c)] & cls) != 0;
}
inline constexpr bool isTchar(char c) {
  return is(c, kTchar);
}
inline constexpr bool isHex(char c) {
  return is(c, kHex);
}
inline constexpr bool isWs(char c) {
  return c == ' ' || c == '\t';
}

inline constexpr int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

inline constexpr char toLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

inline constexpr bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (toLower(a[i]) != toLower(b[i])) {
      return false;
    }
  }
  return true;
}

inline constexpr bool isToken(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (!isTchar(c)) {
      return false;
    }
  }
  return true;
}

}  // namespace ferry::http::chars
