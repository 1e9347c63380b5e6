// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The one reason-phrase table.
#include "http/status.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace ferry::http {
namespace {

TEST_CASE("reason phrases: RFC 9110 names and class fallbacks", "[http][status]") {
  struct Row {
    int status;
    const char* phrase;
  };
  for (const Row& r : std::vector<Row>{{100, "Continue"},
                                       {200, "OK"},
                                       {201, "Created"},
                                       {204, "No Content"},
                                       {301, "Moved Permanently"},
                                       {308, "Permanent Redirect"},
                                       {400, "Bad Request"},
                                       {401, "Unauthorized"},
                                       {403, "Forbidden"},
                                       {404, "Not Found"},
                                       {410, "Gone"},
                                       {414, "URI Too Long"},
                                       {422, "Unprocessable Entity"},
                                       {429, "Too Many Requests"},
                                       {431, "Request Header Fields Too Large"},
                                       {500, "Internal Server Error"},
                                       {502, "Bad Gateway"},
                                       {503, "Service Unavailable"},
                                       {504, "Gateway Timeout"},
                                       {505, "HTTP Version Not Supported"},
                                       {299, "OK"},
                                       {418, "Client Error"},
                                       {499, "Client Error"},
                                       {599, "Server Error"},
                                       {0, "OK"}}) {
    INFO(r.status);
    CHECK(std::string(reasonPhrase(r.status)) == r.phrase);
  }
}

}  // namespace
}  // namespace ferry::http
