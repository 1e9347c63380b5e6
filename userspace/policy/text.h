// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Small string helpers for std::string_view. Debian's Abseil is built with its own
// absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), so absl::StrCat and friends do not take
// std::string_view; these do.

#include <concepts>
#include <string>
#include <string_view>

namespace ferry::text {

inline void appendTo(std::string& out, std::string_view s) {
  out.append(s);
}
inline void appendTo(std::string& out, const char* s) {
  out.append(s);
}
inline void appendTo(std::string& out, char c) {
  out.push_back(c);
}
template <std::integral T>
requires(!std::same_as<T, char> && !std::same_as<T, bool>) void appendTo(std::string& out, T v) {
  out.append(std::to_string(+v));
}

// Concatenates strings, string_views, characters and integers.
template <typename... Args>
std::string cat(const Args&... args) {
  std::string out;
  (appendTo(out, args), ...);
  return out;
}

inline char lowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

inline std::string toLowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = lowerAscii(c);
  }
  return out;
}

inline bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (lowerAscii(a[i]) != lowerAscii(b[i])) {
      return false;
    }
  }
  return true;
}

inline bool isDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// RFC 9110 tchar: the characters of a header name or a method token.
inline bool isTchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace ferry::text
