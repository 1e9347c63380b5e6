// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

#include "http/http1_filter.h"

namespace ferry::http::testing {

inline constexpr std::string_view kDenied403 =
    "HTTP/1.1 403 Forbidden\r\ncontent-length: 19\r\ncontent-type: text/plain\r\n\r\n"
    "RBAC: access denied";

// Stands for the DENY rule `paths: ["/admin*"]` plus a header rule denying x-user: mallory
// (any field line, any case of the name), and remembers what it was shown.
struct AdminDenier {
  std::string last_path;
  std::string last_joined_user;
  int calls = 0;
  AuthzDecision operator()(const RequestView& v) {
    ++calls;
    last_path = std::string(v.path);
    last_joined_user = v.headerJoined("x-user").value_or("");
    if (v.path.substr(0, 6) == "/admin") {
      return {false, "ns/deny-admin", "rules[0]"};
    }
    for (const Header& h : v.headers) {
      std::string name(h.name);
      for (char& c : name) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      if (name == "x-user" && h.value == "mallory") {
        return {false, "ns/deny-mallory", "rules[0]"};
      }
    }
    return {true, "", ""};
  }
};

}  // namespace ferry::http::testing
