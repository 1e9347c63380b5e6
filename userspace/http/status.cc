// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "http/status.h"

#include <algorithm>
#include <array>
#include <utility>

namespace ferry::http {
namespace {

// Sorted by code for a binary search.
constexpr std::array<std::pair<int, const char*>, 46> kPhrases = {{
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Entity"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
}};

static_assert(std::is_sorted(kPhrases.begin(), kPhrases.end()));

}  // namespace

const char* reasonPhrase(int status) {
  auto it = std::lower_bound(kPhrases.begin(), kPhrases.end(), status,
                             [](const auto& entry, int code) { return entry.first < code; });
  if (it != kPhrases.end() && it->first == status) {
    return it->second;
  }
  return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
}

}  // namespace ferry::http
