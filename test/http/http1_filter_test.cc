// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "http/http1_filter.h"

#include <catch2/catch.hpp>

#include "filter_util.h"

namespace ferry::http {
namespace {

using testing::kDenied403;

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

struct Harness {
  testing::AdminDenier denier;
  Http1Filter filter;
  FilterOutput out;
  explicit Harness(Http1FilterConfig config = {}, RequestHeaderHook hook = nullptr)
      : filter(config, std::ref(denier), std::move(hook)) {}
  // Feeds in pieces of `step` bytes (0: at once).
  void down(std::string_view d, size_t step = 0) {
    step = step == 0 ? std::max<size_t>(d.size(), 1) : step;
    for (size_t i = 0; i < d.size(); i += step) {
      filter.onDownstreamData(d.substr(i, step), out);
    }
  }
  void up(std::string_view d, size_t step = 0) {
    step = step == 0 ? std::max<size_t>(d.size(), 1) : step;
    for (size_t i = 0; i < d.size(); i += step) {
      filter.onUpstreamData(d.substr(i, step), out);
    }
  }
  std::string takeUp() { return std::exchange(out.to_upstream, {}); }
  std::string takeDown() { return std::exchange(out.to_downstream, {}); }
};

TEST_CASE("pipelined allow/deny/allow keeps response order", "[http1][filter]") {
  for (size_t step : {0, 1, 5}) {
    Harness h;
    h.down(
        "GET /a HTTP/1.1\r\nHost: s\r\n\r\n"
        "POST /admin HTTP/1.1\r\nHost: s\r\nContent-Length: 5\r\n\r\nhello"
        "GET /b HTTP/1.1\r\nHost: s\r\n\r\n",
        step);
    CHECK(h.takeUp() == "GET /a HTTP/1.1\r\nHost: s\r\n\r\nGET /b HTTP/1.1\r\nHost: s\r\n\r\n");
    CHECK(h.takeDown().empty());  // 403 must wait behind the first response
    h.up(kOk, step);
    CHECK(h.takeDown() == kOk + std::string(kDenied403));
    h.up("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", step);
    CHECK(h.takeDown() == "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    CHECK_FALSE(h.out.close);
    CHECK(h.filter.stats().allowed == 2);
    CHECK(h.filter.stats().denied == 1);
    CHECK(h.filter.stats().responses == 2);
  }
}

TEST_CASE("a denied request's body is skipped and the connection stays usable", "[http1][filter]") {
  for (size_t step : {0, 1, 3}) {
    Harness h;
    h.down(
        "POST /admin HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n"
        "4\r\nGET \r\n18\r\n/x HTTP/1.1\r\nHost: s\r\n\r\n\r\n0\r\n\r\n",
        step);
    CHECK(h.takeDown() == kDenied403);
    CHECK(h.takeUp().empty());  // the "request" inside the body never reaches the app
    h.down("GET /ok HTTP/1.1\r\nHost: s\r\n\r\n", step);
    CHECK(h.takeUp() == "GET /ok HTTP/1.1\r\nHost: s\r\n\r\n");
    h.up(kOk);
    CHECK(h.takeDown() == kOk);
    CHECK_FALSE(h.out.close);
  }
}

TEST_CASE("denied request with Expect: 100-continue and a body closes", "[http1][filter]") {
  Harness h;
  h.down("PUT /admin HTTP/1.1\r\nHost: s\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  CHECK(h.out.to_downstream.find("HTTP/1.1 403 Forbidden\r\n") == 0);
  CHECK(h.out.to_downstream.find("connection: close\r\n") != std::string::npos);
  CHECK(h.out.close);
  CHECK(h.filter.closed());
}

TEST_CASE("denied request with Connection: close closes after the 403", "[http1][filter]") {
  Harness h;
  h.down("GET /admin HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\nGET /a HTTP/1.1\r\n");
  CHECK(h.takeUp().empty());
  CHECK(h.out.close);
}

TEST_CASE("a malformed request after a forwarded one: 400 in order, then close",
          "[http1][filter]") {
  Harness h;
  h.down("GET /a HTTP/1.1\r\nHost: s\r\n\r\nGET /b HTTP/1.1\r\nHost : s\r\n\r\n");
  CHECK(h.takeUp() == "GET /a HTTP/1.1\r\nHost: s\r\n\r\n");
  CHECK(h.takeDown().empty());
  CHECK_FALSE(h.out.close);
  h.up(kOk);
  const std::string down = h.takeDown();
  CHECK(down.substr(0, kOk.size()) == kOk);
  CHECK(down.substr(kOk.size(), 25) == "HTTP/1.1 400 Bad Request\r");
  CHECK(h.out.close);
  CHECK(h.filter.lastError() == "whitespace between header field name and colon");
}

TEST_CASE("a malformed chunk mid-body of a forwarded request shuts the app side",
          "[http1][filter]") {
  Harness h;
  h.down("POST /a HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\nXYZ\r\n");
  CHECK(h.out.shutdown_upstream);
  CHECK(h.out.to_downstream.substr(0, 13) == "HTTP/1.1 400 ");
  CHECK(h.out.close);
}

TEST_CASE("WebSocket upgrade: authorized, then a raw tunnel", "[http1][filter]") {
  Harness h;
  h.down(
      "GET /chat HTTP/1.1\r\nHost: s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
      "\x81\x05hello");
  CHECK(h.takeUp() ==
        "GET /chat HTTP/1.1\r\nHost: s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  CHECK_FALSE(h.filter.tunneling());
  h.up(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
      "Upgrade\r\n\r\n\x81\x02hi");
  CHECK(h.filter.tunneling());
  CHECK(h.takeDown() ==
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
        "Upgrade\r\n\r\n\x81\x02hi");
  CHECK(h.takeUp() == "\x81\x05hello");   // held while the app decided, then passed raw
  h.down("GET /admin HTTP/1.1\r\n\r\n");  // tunnel payload, not HTTP any more
  CHECK(h.takeUp() == "GET /admin HTTP/1.1\r\n\r\n");
  h.filter.onDownstreamEof(h.out);
  CHECK(h.out.shutdown_upstream);
  CHECK_FALSE(h.out.close);
  h.filter.onUpstreamEof(h.out);
  CHECK(h.out.close);
}

TEST_CASE("declined upgrade: held bytes are parsed as HTTP again", "[http1][filter]") {
  Harness h;
  h.down(
      "GET /chat HTTP/1.1\r\nHost: s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
      "GET /admin HTTP/1.1\r\nHost: s\r\n\r\n");
  h.takeUp();
  CHECK(h.denier.calls == 1);  // the second request waits for the upgrade decision
  h.up(kOk);
  CHECK_FALSE(h.filter.tunneling());
  CHECK(h.denier.calls == 2);
  CHECK(h.takeDown() == kOk + std::string(kDenied403));
}

TEST_CASE("denied upgrade closes after the 403", "[http1][filter]") {
  Harness h;
  h.down("GET /admin HTTP/1.1\r\nHost: s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  CHECK(h.out.to_downstream.find("HTTP/1.1 403 Forbidden") == 0);
  CHECK(h.out.close);
}

TEST_CASE("101 without an upgrade request is refused", "[http1][filter]") {
  Harness h;
  h.down("GET /a HTTP/1.1\r\nHost: s\r\n\r\n");
  h.up("HTTP/1.1 101 Switching Protocols\r\n\r\n");
  CHECK(h.out.to_downstream.substr(0, 13) == "HTTP/1.1 502 ");
  CHECK(h.out.close);
  CHECK_FALSE(h.filter.tunneling());
}

TEST_CASE("CONNECT: authorized on its authority, tunnel after 2xx", "[http1][filter]") {
  Harness h;
  h.down("CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\nclient-bytes");
  CHECK(h.takeUp() == "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n");
  CHECK(h.denier.last_path.empty());
  h.up("HTTP/1.1 200 Connection Established\r\n\r\nserver-bytes");
  CHECK(h.filter.tunneling());
  CHECK(h.takeUp() == "client-bytes");
  CHECK(h.takeDown() == "HTTP/1.1 200 Connection Established\r\n\r\nserver-bytes");
}

TEST_CASE("interim 100 Continue, HEAD and 204 responses", "[http1][filter]") {
  Harness h;
  h.down("PUT /a HTTP/1.1\r\nHost: s\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  h.up("HTTP/1.1 100 Continue\r\n\r\n");
  CHECK(h.takeDown() == "HTTP/1.1 100 Continue\r\n\r\n");
  h.down("hiHEAD /b HTTP/1.1\r\nHost: s\r\n\r\nDELETE /c HTTP/1.1\r\nHost: s\r\n\r\n");
  CHECK(h.takeUp() ==
        "PUT /a HTTP/1.1\r\nHost: s\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"
        "HEAD /b HTTP/1.1\r\nHost: s\r\n\r\nDELETE /c HTTP/1.1\r\nHost: s\r\n\r\n");
  h.up(kOk + "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
  CHECK(h.takeDown() ==
        kOk + "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
  CHECK(h.filter.stats().responses == 3);
  CHECK_FALSE(h.out.close);
}

TEST_CASE("response framing and close handling", "[http1][filter]") {
  SECTION("Connection: close response closes after it") {
    Harness h;
    h.down("GET /a HTTP/1.1\r\nHost: s\r\n\r\n");
    h.up("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx");
    CHECK(h.out.close);
  }
  SECTION("until-close body ends at upstream EOF") {
    Harness h;
    h.down("GET /a HTTP/1.1\r\nHost: s\r\n\r\n");
    h.up("HTTP/1.1 200 OK\r\n\r\nstream...");
    CHECK_FALSE(h.out.close);
    h.filter.onUpstreamEof(h.out);
    CHECK(h.takeDown() == "HTTP/1.1 200 OK\r\n\r\nstream...");
    CHECK(h.out.close);
    CHECK(h.filter.stats().responses == 1);
  }
  SECTION("upstream closes before responding: 502") {
    Harness h;
    h.down("GET /a HTTP/1.1\r\nHost: s\r\n\r\n");
    h.filter.onUpstreamEof(h.out);
    CHECK(h.out.to_downstream.substr(0, 13) == "HTTP/1.1 502 ");
    CHECK(h.out.close);
  }
  SECTION("unsolicited response data is refused") {
    Harness h;
    h.up(kOk);
    CHECK(h.out.to_downstream.empty());
    CHECK(h.out.close);
  }
  SECTION("malformed response: 502") {
    Harness h;
    h.down("GET /a HTTP/1.1\r\nHost: s\r\n\r\n");
    h.up("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    CHECK(h.out.to_downstream.substr(0, 13) == "HTTP/1.1 502 ");
    CHECK(h.out.close);
  }
  SECTION("client half-close after pipelined requests still gets the responses") {
    Harness h;
    h.down("GET /a HTTP/1.1\r\nHost: s\r\n\r\nGET /admin HTTP/1.1\r\nHost: s\r\n\r\n");
    h.filter.onDownstreamEof(h.out);
    CHECK_FALSE(h.out.close);
    h.up(kOk);
    CHECK(h.takeDown() == kOk + std::string(kDenied403));
    CHECK(h.out.close);
  }
  SECTION("client closes mid-request") {
    Harness h;
    h.down("POST /a HTTP/1.1\r\nHost: s\r\nContent-Length: 10\r\n\r\nabc");
    h.filter.onDownstreamEof(h.out);
    CHECK(h.out.shutdown_upstream);
    CHECK(h.out.close);
  }
}

TEST_CASE("header hook adds propagated headers and bad edits are dropped", "[http1][filter]") {
  Harness h({}, [](const RequestView& v, HeaderEdits& e) {
    e.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    e.add("x-bad", "a\r\nInjected: yes");
    e.add("Content-Length", "0");
    e.remove("x-drop");
  });
  h.down("GET /a HTTP/1.1\r\nHost: s\r\nTraceparent: old\r\nX-Drop: 1\r\nX-Keep: 2\r\n\r\n");
  CHECK(h.takeUp() ==
        "GET /a HTTP/1.1\r\nHost: s\r\nX-Keep: 2\r\n"
        "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n");
}

TEST_CASE("record sink sees each request with its decision and status", "[http1][filter]") {
  Harness h;
  std::vector<RequestRecord> records;
  h.filter.setRecordSink([&](const RequestRecord& r) { records.push_back(r); });
  h.down("GET /a/./b HTTP/1.1\r\nHost: s\r\n\r\nGET /admin HTTP/1.1\r\nHost: s\r\n\r\n");
  h.up("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(records.size() == 2);
  CHECK(records[0].path == "/a/b");
  CHECK(records[0].allowed);
  CHECK(records[0].status == 404);
  CHECK_FALSE(records[0].local_reply);
  CHECK(records[1].path == "/admin");
  CHECK_FALSE(records[1].allowed);
  CHECK(records[1].policy == "ns/deny-admin");
  CHECK(records[1].status == 403);
  CHECK(records[1].local_reply);
}

TEST_CASE("records carry body sizes and duration on the filter clock and traceparents",
          "[http1][filter]") {
  std::chrono::steady_clock::time_point t;
  Http1FilterConfig config;
  config.now = [&t] { return t; };
  const std::string incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const std::string child = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01";
  Harness h(config, [&](const RequestView&, HeaderEdits& e) { e.set("traceparent", child); });
  std::vector<RequestRecord> records;
  h.filter.setRecordSink([&](const RequestRecord& r) { records.push_back(r); });
  h.down("POST /up HTTP/1.1\r\nHost: s\r\ntraceparent: " + incoming +
         "\r\nContent-Length: 5\r\n\r\nhello");
  t += std::chrono::milliseconds(7);
  h.up("HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc");
  h.down(
      "POST /c HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\nwxyz\r\n2\r\n12\r\n0\r\n\r\n");
  t += std::chrono::milliseconds(2);
  h.up("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  // Denied: its body is dropped, the 403 body is what the client gets.
  h.down("POST /admin HTTP/1.1\r\nHost: s\r\nContent-Length: 4\r\n\r\nnope");
  REQUIRE(records.size() == 3);
  const RequestRecord& up = records[0];
  CHECK(up.status == 201);
  CHECK(up.authorized);
  CHECK(up.request_body_bytes == 5);
  CHECK(up.response_body_bytes == 3);
  CHECK(up.duration == std::chrono::milliseconds(7));
  CHECK(up.traceparent == incoming);
  CHECK(up.forwarded_traceparent == child);
  CHECK_FALSE(up.grpc);
  CHECK(up.grpc_status == -1);
  const RequestRecord& chunked = records[1];
  CHECK(chunked.request_body_bytes == 6);  // chunk data only, not the framing
  CHECK(chunked.response_body_bytes == 3);
  CHECK(chunked.duration == std::chrono::milliseconds(2));
  CHECK(chunked.traceparent.empty());
  const RequestRecord& denied = records[2];
  CHECK(denied.status == 403);
  CHECK(denied.authorized);
  CHECK_FALSE(denied.allowed);
  CHECK(denied.request_body_bytes == 0);
  CHECK(denied.response_body_bytes == std::string_view("RBAC: access denied").size());
  CHECK(denied.forwarded_traceparent.empty());  // never forwarded: the hook did not run

  // A malformed request never reaches the authorizer.
  h.down("GET /x HTTP/1.1\r\nHost: s\r\nBad Header: 1\r\n\r\n");
  REQUIRE(records.size() == 4);
  CHECK(records[3].status == 400);
  CHECK_FALSE(records[3].authorized);
  CHECK(records[3].local_reply);
}

TEST_CASE("backpressure: pipelined requests beyond the limit are held", "[http1][filter]") {
  Http1FilterConfig config;
  config.max_pending_requests = 2;
  config.max_held_bytes = 64;
  Harness h(config);
  std::string three;
  for (int i = 0; i < 3; ++i) {
    three += "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: s\r\n\r\n";
  }
  h.down(three);
  CHECK(h.takeUp() == "GET /0 HTTP/1.1\r\nHost: s\r\n\r\nGET /1 HTTP/1.1\r\nHost: s\r\n\r\n");
  CHECK(h.filter.wantsDownstreamData());
  h.down(std::string(64, 'x'));
  CHECK_FALSE(h.filter.wantsDownstreamData());
  h.up(kOk);
  CHECK(h.takeUp() == "GET /2 HTTP/1.1\r\nHost: s\r\n\r\n");
  CHECK_FALSE(h.filter.wantsDownstreamData());  // two requests in flight again
  h.up(kOk);
  CHECK(h.filter.wantsDownstreamData());  // the held bytes went to the parser (a partial head)
  CHECK(h.takeUp().empty());
  CHECK_FALSE(h.out.close);
}

// A refusal other than policy's (a rate limit): the authorizer's status, header fields and
// response flag reach the client and the record, in the request's place in the pipeline.
TEST_CASE("a rate-limited request is answered 429 with Retry-After, flagged RL",
          "[http1][filter]") {
  int calls = 0;
  Authorizer limiter = [&calls](const RequestView&) {
    AuthzDecision d;
    d.allow = ++calls != 2;
    if (!d.allow) {
      d.status = 429;
      d.reply_headers = {{"retry-after", "3"}};
      d.response_flags = "RL";
      d.reason = "rate limited by ns/limits";
    }
    return d;
  };
  Http1Filter filter({}, limiter);
  std::vector<RequestRecord> records;
  filter.setRecordSink([&](const RequestRecord& r) { records.push_back(r); });
  FilterOutput out;
  filter.onDownstreamData(
      "GET /a HTTP/1.1\r\nHost: s\r\n\r\nGET /b HTTP/1.1\r\nHost: s\r\n\r\n"
      "GET /c HTTP/1.1\r\nHost: s\r\n\r\n",
      out);
  CHECK(out.to_upstream == "GET /a HTTP/1.1\r\nHost: s\r\n\r\nGET /c HTTP/1.1\r\nHost: s\r\n\r\n");
  out.to_upstream.clear();
  filter.onUpstreamData(kOk, out);
  CHECK(out.to_downstream ==
        kOk +
            "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 18\r\ncontent-type: "
            "text/plain\r\nretry-after: 3\r\n\r\nlocal_rate_limited");
  CHECK_FALSE(out.close);  // the connection stays usable
  REQUIRE(records.size() == 2);
  CHECK(records[1].status == 429);
  CHECK(records[1].response_flags == "RL");
  CHECK(records[1].local_reply);
  CHECK(records[1].reason == "rate limited by ns/limits");
  CHECK(records[0].response_flags.empty());
}

// A refused credential (JWT): 401 with the authorizer's body and WWW-Authenticate; an accepted
// one forwards with the authorizer's header edits, before the hook's.
TEST_CASE("a refused JWT is answered 401 with its body and WWW-Authenticate", "[http1][filter]") {
  Authorizer authn = [](const RequestView& v) {
    AuthzDecision d;
    d.allow = v.path == "/ok";
    if (d.allow) {
      d.edits.remove("authorization");
      d.edits.add("x-user", "bob");
    } else {
      d.status = 401;
      d.body = "Jwt is expired";
      d.reply_headers = {{"www-authenticate", "Bearer error=\"invalid_token\""}};
    }
    return d;
  };
  Http1Filter filter({}, authn);
  FilterOutput out;
  filter.onDownstreamData(
      "GET /ok HTTP/1.1\r\nHost: s\r\nAuthorization: Bearer t\r\n\r\n"
      "GET /no HTTP/1.1\r\nHost: s\r\n\r\n",
      out);
  CHECK(out.to_upstream == "GET /ok HTTP/1.1\r\nHost: s\r\nx-user: bob\r\n\r\n");
  filter.onUpstreamData(kOk, out);
  CHECK(out.to_downstream ==
        kOk +
            "HTTP/1.1 401 Unauthorized\r\ncontent-length: 14\r\ncontent-type: "
            "text/plain\r\nwww-authenticate: Bearer error=\"invalid_token\"\r\n\r\nJwt is expired");
  CHECK_FALSE(out.close);
}

}  // namespace
}  // namespace ferry::http
