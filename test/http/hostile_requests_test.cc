// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The hostile-request table: each row is one request sent to an Http1Filter whose policy is a
// DENY on `/admin*` (and on x-user: mallory). Every row asserts the decision and the exact
// bytes forwarded to the app, so a normalization or parsing gap shows up as a failing row.
#include <catch2/catch.hpp>

#include "filter_util.h"
#include "http/http1_filter.h"

namespace ferry::http {
namespace {

enum class Outcome { kForward, kDeny, kReject };

struct Row {
  const char* name;
  std::string request;
  Outcome outcome;
  // kForward: the request line the app receives; kReject: the status.
  std::string forwarded_line;
  uint16_t status = 0;
};

const std::string kH = "Host: svc\r\n";

std::string get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\n" + kH + extra + "\r\n";
}

TEST_CASE("hostile requests against a DENY on the /admin prefix", "[http1][hostile]") {
  const Row rows[] = {
      {"plain /admin", get("/admin"), Outcome::kDeny, ""},
      {"/admin/ subpath", get("/admin/users"), Outcome::kDeny, ""},
      {"double slash //admin", get("//admin"), Outcome::kDeny, ""},
      {"many slashes ///admin//x", get("///admin//x"), Outcome::kDeny, ""},
      {"encoded letter /%61dmin", get("/%61dmin"), Outcome::kDeny, ""},
      {"encoded trailing slash /admin%2f", get("/admin%2f"), Outcome::kDeny, ""},
      {"encoded leading slash /%2fadmin", get("/%2fadmin"), Outcome::kDeny, ""},
      {"encoded backslash /%5cadmin", get("/%5cadmin"), Outcome::kDeny, ""},
      {"dot segment /./admin", get("/./admin"), Outcome::kDeny, ""},
      {"dot-dot /a/../admin", get("/a/../admin"), Outcome::kDeny, ""},
      {"dot-dot above root /../admin", get("/../admin"), Outcome::kDeny, ""},
      {"encoded dots /%2e%2e/admin", get("/%2e%2e/admin"), Outcome::kDeny, ""},
      {"encoded dots mixed case /public/%2E%2e/admin", get("/public/%2E%2e/admin"), Outcome::kDeny,
       ""},
      {"encoded slash traversal /public%2f..%2fadmin", get("/public%2f..%2fadmin"), Outcome::kDeny,
       ""},
      {"backslash \\admin", get("\\admin"), Outcome::kDeny, ""},
      {"backslash traversal /public\\..\\admin", get("/public\\..\\admin"), Outcome::kDeny, ""},
      {"query does not hide the path /admin?x=/public", get("/admin?x=/public"), Outcome::kDeny,
       ""},
      {"absolute-form http://svc/admin", get("http://svc/admin"), Outcome::kDeny, ""},
      {"absolute-form scheme case HTTP://svc//admin", get("HTTP://svc//admin"), Outcome::kDeny, ""},
      {"HTTP/1.0 request", "GET /admin HTTP/1.0\r\n" + kH + "\r\n", Outcome::kDeny, ""},
      {"header x-user: mallory", get("/public", "x-user: mallory\r\n"), Outcome::kDeny, ""},
      {"header name case X-USER: mallory", get("/public", "X-USER: mallory\r\n"), Outcome::kDeny,
       ""},
      {"duplicate mixed-case header, mallory second",
       get("/public", "X-User: alice\r\nx-user: mallory\r\n"), Outcome::kDeny, ""},
      {"pipelined smuggle after an allowed request",
       "POST /public HTTP/1.1\r\n" + kH + "Content-Length: 0\r\n\r\n" + get("/admin"),
       Outcome::kForward, "POST /public HTTP/1.1"},

      {"fragment /admin#x", get("/admin#x"), Outcome::kReject, "", 400},
      {"fragment after allowed path /public#/admin", get("/public#/../admin"), Outcome::kReject, "",
       400},
      {"NUL /admin%00", get("/admin%00.html"), Outcome::kReject, "", 400},
      {"raw NUL in target", std::string("GET /adm\0in HTTP/1.1\r\nHost: svc\r\n\r\n", 35),
       Outcome::kReject, "", 400},
      {"tomcat path parameter /public/..;/admin", get("/public/..;/admin"), Outcome::kReject, "",
       400},
      {"malformed escape /admin%zz", get("/admin%zz"), Outcome::kReject, "", 400},
      {"space-separated path /admin x", "GET /admin x HTTP/1.1\r\n" + kH + "\r\n", Outcome::kReject,
       "", 400},
      {"tab as separator", "GET\t/admin HTTP/1.1\r\n" + kH + "\r\n", Outcome::kReject, "", 400},
      {"absolute-form with userinfo", get("http://u@svc/public"), Outcome::kReject, "", 400},
      {"absolute-form other scheme", get("file://svc/admin"), Outcome::kReject, "", 400},
      {"underscore header x_user: mallory", get("/public", "x_user: mallory\r\n"), Outcome::kReject,
       "", 400},
      {"obs-fold hiding a value", get("/public", "X-User: alice\r\n mallory\r\n"), Outcome::kReject,
       "", 400},
      {"whitespace before colon", get("/public", "X-User : mallory\r\n"), Outcome::kReject, "",
       400},
      {"CL + TE",
       "POST /public HTTP/1.1\r\n" + kH +
           "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       Outcome::kReject, "", 400},
      {"TE with a trailing space-tab variant",
       "POST /public HTTP/1.1\r\n" + kH + "Transfer-Encoding: chunked\t,x\r\n\r\n",
       Outcome::kReject, "", 400},
      {"two Hosts", "GET /public HTTP/1.1\r\nHost: svc\r\nhost: admin\r\n\r\n", Outcome::kReject,
       "", 400},
      {"no Host", "GET /public HTTP/1.1\r\n\r\n", Outcome::kReject, "", 400},
      {"HTTP/1.0 without Host", "GET /public HTTP/1.0\r\n\r\n", Outcome::kReject, "", 400},
      {"bare LF", "GET /public HTTP/1.1\n" + kH + "\n", Outcome::kReject, "", 400},
      {"bare CR", "GET /public HTTP/1.1\r\nHost: svc\rX-A: b\r\n\r\n", Outcome::kReject, "", 400},
      {"HTTP/2 preface on an HTTP/1 port", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Outcome::kReject, "",
       505},
      {"oversized header section", get("/public", "X-Big: " + std::string(70000, 'a') + "\r\n"),
       Outcome::kReject, "", 431},
      {"oversized request line", get("/" + std::string(9000, 'a')), Outcome::kReject, "", 414},

      {"case differs: /ADMIN is another path (Istio matching is case-sensitive)", get("/ADMIN"),
       Outcome::kForward, "GET /ADMIN HTTP/1.1"},
      {"double-encoded dots stay encoded", get("/%252e%252e/admin"), Outcome::kForward,
       "GET /%252e%252e/admin HTTP/1.1"},
      {"lowercase hex is normalized", get("/public/%3a%7e"), Outcome::kForward,
       "GET /public/%3A~ HTTP/1.1"},
      {"path to public with a query naming admin", get("/public?next=/admin"), Outcome::kForward,
       "GET /public?next=/admin HTTP/1.1"},
      {"absolute-form forwarded as origin-form", get("http://svc/public/./x"), Outcome::kForward,
       "GET /public/x HTTP/1.1"},
      // RFC 9112 3.2.2: the target's authority wins (hostile_tunnels_test.cc checks the Host).
      {"absolute-form authority differs from Host", get("http://other/public"), Outcome::kForward,
       "GET /public HTTP/1.1"},
      {"dot segments resolved before forwarding", get("/admin/../public"), Outcome::kForward,
       "GET /public HTTP/1.1"},
      {"duplicate header, both alice", get("/public", "X-User: alice\r\nx-user: alice\r\n"),
       Outcome::kForward, "GET /public HTTP/1.1"},
      {"OPTIONS *", "OPTIONS * HTTP/1.1\r\n" + kH + "\r\n", Outcome::kForward,
       "OPTIONS * HTTP/1.1"},
  };
  for (const Row& row : rows) {
    SECTION(row.name) {
      testing::AdminDenier denier;
      Http1Filter filter({}, std::ref(denier));
      FilterOutput out;
      filter.onDownstreamData(row.request, out);
      INFO("path seen by policy: " << denier.last_path);
      switch (row.outcome) {
        case Outcome::kDeny:
          CHECK(out.to_upstream.empty());
          if (row.request.find("HTTP/1.0") != std::string::npos) {
            CHECK(out.to_downstream.find("HTTP/1.1 403 Forbidden\r\n") == 0);
            CHECK(out.close);
          } else {
            CHECK(out.to_downstream == testing::kDenied403);
            CHECK_FALSE(out.close);  // the connection stays usable
          }
          CHECK(filter.stats().denied == 1);
          break;
        case Outcome::kReject: {
          CHECK(out.to_upstream.empty());
          const std::string status_line = "HTTP/1.1 " + std::to_string(row.status) + " ";
          CHECK(out.to_downstream.substr(0, status_line.size()) == status_line);
          CHECK(out.to_downstream.find("connection: close\r\n") != std::string::npos);
          CHECK(out.close);
          CHECK(filter.stats().rejected == 1);
          CHECK_FALSE(filter.lastError().empty());
          break;
        }
        case Outcome::kForward:
          REQUIRE(out.to_upstream.size() >= row.forwarded_line.size() + 2);
          CHECK(out.to_upstream.substr(0, row.forwarded_line.size() + 2) ==
                row.forwarded_line + "\r\n");
          CHECK(out.to_downstream.empty());
          CHECK_FALSE(out.close);
          break;
      }
    }
  }
}

TEST_CASE("forwarded head is rebuilt from parsed fields", "[http1][hostile]") {
  testing::AdminDenier denier;
  Http1Filter filter({}, std::ref(denier));
  FilterOutput out;
  filter.onDownstreamData(
      "GET /public//x/./y HTTP/1.1\r\nHost:   svc  \r\nX-User: alice\r\nx-user: bob\r\n"
      "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nConnection: Upgrade, "
      "HTTP2-Settings\r\n\r\n",
      out);
  // Whitespace trimmed, both x-user lines kept in order, h2c upgrade stripped (an h2c
  // connection would carry later requests past the filter).
  CHECK(out.to_upstream ==
        "GET /public/x/y HTTP/1.1\r\nHost: svc\r\nX-User: alice\r\nx-user: bob\r\n"
        "Connection: Upgrade, HTTP2-Settings\r\n\r\n");
  CHECK(denier.last_joined_user == "alice,bob");
  CHECK(denier.last_path == "/public/x/y");
}

TEST_CASE("pipelined smuggle: the second request is authorized on its own", "[http1][hostile]") {
  testing::AdminDenier denier;
  Http1Filter filter({}, std::ref(denier));
  FilterOutput out;
  filter.onDownstreamData(
      "POST /public HTTP/1.1\r\nHost: svc\r\nContent-Length: 0\r\n\r\n"
      "GET /admin HTTP/1.1\r\nHost: svc\r\n\r\n",
      out);
  CHECK(out.to_upstream == "POST /public HTTP/1.1\r\nHost: svc\r\nContent-Length: 0\r\n\r\n");
  CHECK(out.to_downstream.empty());  // the 403 waits for the first response
  CHECK(denier.calls == 2);
  out.clear();
  filter.onUpstreamData("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", out);
  CHECK(out.to_downstream == std::string("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") +
                                 std::string(testing::kDenied403));
}

TEST_CASE("underscore header policies: drop and allow", "[http1][hostile]") {
  testing::AdminDenier denier;
  Http1FilterConfig drop;
  drop.underscores = Http1FilterConfig::Underscores::kDrop;
  Http1Filter f1(drop, std::ref(denier));
  FilterOutput out;
  f1.onDownstreamData(get("/public", "x_user: mallory\r\n"), out);
  CHECK(out.to_upstream == "GET /public HTTP/1.1\r\nHost: svc\r\n\r\n");
  Http1FilterConfig allow;
  allow.underscores = Http1FilterConfig::Underscores::kAllow;
  Http1Filter f2(allow, std::ref(denier));
  out.clear();
  f2.onDownstreamData(get("/public", "x_user: mallory\r\n"), out);
  CHECK(out.to_upstream == "GET /public HTTP/1.1\r\nHost: svc\r\nx_user: mallory\r\n\r\n");
}

TEST_CASE("escaped-slash options change the decision and the forwarded path", "[http1][hostile]") {
  testing::AdminDenier denier;
  Http1FilterConfig keep;
  keep.path = {EscapedSlashes::kKeep, /*merge_slashes=*/false};
  Http1Filter f1(keep, std::ref(denier));
  FilterOutput out;
  // Kept encoded, %2Fadmin is not under /admin for policy, and is forwarded exactly so.
  f1.onDownstreamData(get("/%2fadmin"), out);
  CHECK(out.to_upstream.substr(0, 24) == "GET /%2Fadmin HTTP/1.1\r\n");
  Http1FilterConfig reject;
  reject.path = {EscapedSlashes::kReject, true};
  Http1Filter f2(reject, std::ref(denier));
  out.clear();
  f2.onDownstreamData(get("/%2fadmin"), out);
  CHECK(out.to_downstream.substr(0, 13) == "HTTP/1.1 400 ");
  CHECK(f2.lastError() == "encoded slash (%2F or %5C) in path");
}

}  // namespace
}  // namespace ferry::http
