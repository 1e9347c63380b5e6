// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "http/http2_filter.h"

#include <catch2/catch.hpp>
#include <map>

#include "filter_util.h"
#include "h2_rig.h"

namespace ferry::http {
namespace {

using testing::echoApp;
using testing::H2Message;
using testing::H2Peer;
using testing::Rig;
using Fields = std::vector<std::pair<std::string, std::string>>;

Fields get(const std::string& path, Fields extra = {}) {
  Fields f = {{":method", "GET"}, {":scheme", "http"}, {":authority", "svc"}, {":path", path}};
  f.insert(f.end(), extra.begin(), extra.end());
  return f;
}

TEST_CASE("h2: a denied stream next to an allowed one on the same connection", "[http2]") {
  Rig rig;
  const int32_t ok = rig.client.request(get("/public/./x"));
  const int32_t denied = rig.client.request(get("//admin"));
  const int32_t ok2 = rig.client.request(get("/public", {{"x-user", "alice"}}));
  rig.run();
  const H2Message& a = rig.client.messages[ok];
  CHECK(a.header(":status") == "200");
  CHECK(a.body == "app:/public/x");  // the app got the normalized path
  const H2Message& d = rig.client.messages[denied];
  CHECK(d.header(":status") == "403");
  CHECK(d.header("content-type") == "text/plain");
  CHECK(d.body == "RBAC: access denied");
  const H2Message& b = rig.client.messages[ok2];
  CHECK(b.header(":status") == "200");
  CHECK(b.header("x-seen-user") == "alice");
  CHECK(rig.app.messages.size() == 2);  // the denied request never reached the app
  for (const auto& [id, m] : rig.app.messages) {
    CHECK(m.header(":path").find("admin") == std::string::npos);
  }
  CHECK_FALSE(rig.closed);
  CHECK(rig.filter->stats().allowed == 2);
  CHECK(rig.filter->stats().denied == 1);
}

TEST_CASE("h2: gRPC denial is trailers-only with PERMISSION_DENIED", "[http2]") {
  Rig rig;
  Fields grpc = {{"content-type", "application/grpc"}, {"te", "trailers"}};
  auto post = [&](const std::string& path) {
    Fields f = {{":method", "POST"}, {":scheme", "http"}, {":authority", "svc"}, {":path", path}};
    f.insert(f.end(), grpc.begin(), grpc.end());
    return rig.client.request(f, std::string("\0\0\0\0\0", 5));
  };
  const int32_t denied = post("/admin.v1.Admin/DeleteAll");
  const int32_t allowed = post("/shop.v1.Cart/Get");
  rig.run();
  const H2Message& d = rig.client.messages[denied];
  CHECK(d.header(":status") == "403");
  CHECK(d.header("content-type") == "application/grpc");
  CHECK(d.header("grpc-status") == "7");
  CHECK(d.header("grpc-message") == "RBAC: access denied");
  CHECK(d.body.empty());
  CHECK(d.trailers.empty());  // trailers-only: everything in the one HEADERS frame
  const H2Message& a = rig.client.messages[allowed];
  CHECK(a.header(":status") == "200");
  CHECK(a.body == std::string("\0\0\0\0\2ok", 7));
  CHECK(a.trailer("grpc-status") == "0");  // app trailers relayed
  CHECK(rig.app.messages.size() == 1);
}

TEST_CASE("h2: large bodies both ways pass under end-to-end flow control", "[http2]") {
  Rig rig({}, [](const H2Message& req, H2Peer::Reply& reply) {
    reply.headers = {{":status", "200"}};
    reply.body = std::string(300 * 1024, 'r');
    return req.body.size() == 500 * 1024;
  });
  Fields post = {{":method", "POST"}, {":scheme", "http"}, {":authority", "svc"}, {":path", "/up"}};
  const int32_t id = rig.client.request(post, std::string(500 * 1024, 'q'));
  rig.run();
  const H2Message& m = rig.client.messages[id];
  CHECK(m.header(":status") == "200");
  CHECK(m.body.size() == 300 * 1024);
  CHECK(m.complete);
}

TEST_CASE("h2: hostile paths and headers are refused or normalized per stream", "[http2]") {
  Rig rig;
  const int32_t dots = rig.client.request(get("/%2e%2e/admin"));
  const int32_t bad = rig.client.request(get("/a%zz"));
  const int32_t underscore = rig.client.request(get("/public", {{"x_user", "mallory"}}));
  const int32_t mallory = rig.client.request(get("/public", {{"x-user", "mallory"}}));
  const int32_t upper = rig.client.request(get("/ADMIN"));
  rig.run();
  CHECK(rig.client.messages[dots].header(":status") == "403");
  CHECK(rig.client.messages[bad].header(":status") == "400");
  CHECK(rig.client.messages[underscore].header(":status") == "400");
  CHECK(rig.client.messages[mallory].header(":status") == "403");
  CHECK(rig.client.messages[upper].header(":status") == "200");
  CHECK(rig.client.messages[upper].body == "app:/ADMIN");
  CHECK_FALSE(rig.closed);
}

TEST_CASE("h2: rapid reset ends the connection with ENHANCE_YOUR_CALM", "[http2]") {
  auto now = std::chrono::steady_clock::time_point{};
  Http2FilterConfig config;
  config.reset_burst = 10;
  config.reset_rate = 10;
  config.now = [&now] { return now; };
  SECTION("resets within the budget are fine") {
    Rig rig(config, nullptr);  // the app never answers
    for (int i = 0; i < 40; ++i) {
      int32_t id = rig.client.request(get("/public"));
      rig.run();
      rig.client.reset(id);
      now += std::chrono::milliseconds(150);  // refills 1.5 tokens per reset
      rig.run();
    }
    CHECK_FALSE(rig.closed);
    CHECK(rig.filter->stats().client_resets == 40);
  }
  SECTION("a burst beyond it is cut off") {
    Rig rig(config, nullptr);
    for (int i = 0; i < 30 && !rig.closed; ++i) {
      int32_t id = rig.client.request(get("/public"));
      rig.run();  // HEADERS out first: a stream reset before it is sent never exists
      rig.client.reset(id);
      rig.run();
    }
    CHECK(rig.closed);
    CHECK(rig.client.goaway);
    CHECK(rig.client.goaway_code == NGHTTP2_ENHANCE_YOUR_CALM);
    CHECK(rig.filter->closeReason().find("rapid reset") == 0);
    CHECK(rig.filter->stats().client_resets == 11);
  }
}

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string f;
  f.push_back(static_cast<char>(payload.size() >> 16));
  f.push_back(static_cast<char>(payload.size() >> 8));
  f.push_back(static_cast<char>(payload.size()));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  f.push_back(static_cast<char>(stream >> 24));
  f.push_back(static_cast<char>(stream >> 16));
  f.push_back(static_cast<char>(stream >> 8));
  f.push_back(static_cast<char>(stream));
  return f + payload;
}

// HPACK literal header field without indexing, new name (RFC 7541 6.2.2), short strings.
std::string literal(const std::string& name, const std::string& value) {
  std::string s;
  s.push_back(0x00);
  s.push_back(static_cast<char>(name.size()));
  s += name;
  s.push_back(static_cast<char>(value.size()));
  s += value;
  return s;
}

TEST_CASE("h2: CONTINUATION flood ends the connection", "[http2]") {
  Rig rig;
  std::string wire = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, "");
  // :method GET, :scheme http, :path / from the static table; no END_HEADERS.
  wire += frame(1, 0x1, 1, std::string("\x82\x86\x84", 3));
  for (int i = 0; i < 50; ++i) {
    wire += frame(9, 0, 1, literal("x-f" + std::to_string(i), "v"));
  }
  rig.filter->onDownstreamData(wire, rig.out);
  CHECK(rig.out.close);
  CHECK(rig.filter->closed());
  CHECK(rig.app.messages.empty());
  CHECK(rig.out.to_upstream.find("x-f1") == std::string::npos);
}

TEST_CASE("h2: an oversized header list gets 431 on its own stream", "[http2]") {
  Http2FilterConfig config;
  config.max_header_list_bytes = 8 * 1024;
  nghttp2_option* opt;
  nghttp2_option_new(&opt);
  nghttp2_option_set_max_send_header_block_length(opt, 1 << 20);
  Rig rig(config, echoApp, nullptr, opt);
  nghttp2_option_del(opt);
  const int32_t big = rig.client.request(get("/public", {{"x-big", std::string(20000, 'b')}}));
  const int32_t small = rig.client.request(get("/public"));
  rig.run();
  CHECK(rig.client.messages[big].header(":status") == "431");
  CHECK(rig.client.messages[small].header(":status") == "200");
  CHECK_FALSE(rig.closed);
}

TEST_CASE("h2: max concurrent streams is advertised and enforced", "[http2]") {
  Http2FilterConfig config;
  config.max_concurrent_streams = 2;
  Rig rig(config, nullptr);  // the app holds every request
  // Sent before the client has seen the server's SETTINGS, so it does not limit itself.
  std::vector<int32_t> ids;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(rig.client.request(get("/public")));
  }
  rig.run();
  CHECK(nghttp2_session_get_remote_settings(rig.client.session(),
                                            NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) == 2);
  int refused = 0;
  for (int32_t id : ids) {
    if (rig.client.messages[id].closed && rig.client.messages[id].reset == NGHTTP2_REFUSED_STREAM) {
      ++refused;
    }
  }
  CHECK(refused == 2);
  CHECK(rig.app.messages.size() == 2);
}

TEST_CASE("h2: header hook adds headers the app sees", "[http2]") {
  Rig rig(
      {},
      [](const H2Message& req, H2Peer::Reply& reply) {
        reply.headers = {{":status", "200"}};
        reply.body = req.header("traceparent");
        return true;
      },
      [](const RequestView&, HeaderEdits& e) { e.set("Traceparent", "00-abc-def-01"); });
  const int32_t id = rig.client.request(get("/public", {{"traceparent", "old"}}));
  rig.run();
  CHECK(rig.client.messages[id].body == "00-abc-def-01");
}

TEST_CASE("h2: app connection loss answers in-flight streams with 502", "[http2]") {
  Rig rig({}, nullptr);
  std::vector<RequestRecord> records;
  rig.filter->setRecordSink([&](const RequestRecord& r) { records.push_back(r); });
  const int32_t id = rig.client.request(get("/public"));
  rig.run();
  rig.filter->onUpstreamEof(rig.out);
  rig.client.feed(std::exchange(rig.out.to_downstream, {}));
  CHECK(rig.client.messages[id].header(":status") == "502");
  CHECK(rig.out.close);
  CHECK(rig.client.goaway);
  REQUIRE(records.size() == 1);
  CHECK(records[0].status == 502);
  CHECK(records[0].path == "/public");
}

TEST_CASE("h2: a client that does not speak HTTP/2 is refused", "[http2]") {
  Rig rig;
  rig.filter->onDownstreamData("GET / HTTP/1.1\r\nHost: x\r\n\r\n", rig.out);
  CHECK(rig.out.close);
  CHECK(rig.app.messages.empty());
}

TEST_CASE("h2: records carry gRPC status and body sizes and duration and traceparents", "[http2]") {
  std::chrono::steady_clock::time_point t;
  Http2FilterConfig config;
  config.now = [&t] { return t; };
  const std::string incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const std::string child = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01";
  auto slowApp = [&t](const H2Message& req, H2Peer::Reply& reply) {
    t += std::chrono::milliseconds(4);  // each request takes the app 4 ms of the fake clock
    return echoApp(req, reply);
  };
  Rig rig(config, slowApp,
          [&](const RequestView&, HeaderEdits& e) { e.set("traceparent", child); });
  std::vector<RequestRecord> records;
  rig.filter->setRecordSink([&](const RequestRecord& r) { records.push_back(r); });
  auto post = [&](const std::string& path, Fields extra, std::string body) {
    Fields f = {{":method", "POST"}, {":scheme", "http"}, {":authority", "svc"}, {":path", path}};
    f.insert(f.end(), extra.begin(), extra.end());
    return rig.client.request(f, std::move(body));
  };
  Fields grpc = {{"content-type", "application/grpc"}, {"te", "trailers"}};
  Fields traced = {{"traceparent", incoming}};
  post("/shop.v1.Cart/Get", grpc, std::string("\0\0\0\0\3abc", 8));
  post("/admin.v1.Admin/DeleteAll", grpc, std::string("\0\0\0\0\0", 5));
  const int32_t plain = post("/public", traced, "twelve bytes");
  rig.run();
  REQUIRE(rig.client.messages[plain].body == "app:/public:12");
  REQUIRE(records.size() == 3);
  std::map<std::string, RequestRecord> by_path;
  for (const RequestRecord& r : records) {
    by_path[r.path] = r;
  }
  const RequestRecord& c = by_path.at("/shop.v1.Cart/Get");
  CHECK(c.grpc);
  CHECK(c.grpc_status == 0);  // from the app's trailers
  CHECK(c.status == 200);
  CHECK(c.request_body_bytes == 8);
  CHECK(c.response_body_bytes == 7);
  // Both allowed streams are open while the app takes 4 ms for each.
  CHECK(c.duration >= std::chrono::milliseconds(4));
  CHECK(c.duration <= std::chrono::milliseconds(8));
  CHECK(c.forwarded_traceparent == child);
  CHECK(c.traceparent.empty());
  const RequestRecord& d = by_path.at("/admin.v1.Admin/DeleteAll");
  CHECK(d.grpc);
  CHECK(d.grpc_status == 7);  // PERMISSION_DENIED, trailers-only
  CHECK(d.status == 403);
  CHECK_FALSE(d.allowed);
  CHECK(d.authorized);
  CHECK(d.request_body_bytes == 0);
  CHECK(d.forwarded_traceparent.empty());
  CHECK(d.duration == std::chrono::milliseconds(0));  // answered before the app saw anything
  const RequestRecord& p = by_path.at("/public");
  CHECK_FALSE(p.grpc);
  CHECK(p.grpc_status == -1);
  CHECK(p.request_body_bytes == 12);
  CHECK(p.response_body_bytes == std::string_view("app:/public:12").size());
  CHECK(p.traceparent == incoming);
  CHECK(p.forwarded_traceparent == child);
  CHECK(rig.app.messages.size() == 2);
}

TEST_CASE("h2: a refused JWT gets 401 with its body and www-authenticate", "[http2]") {
  Authorizer authn = [](const RequestView& v) {
    AuthzDecision d;
    d.allow = v.path != "/refused";
    if (!d.allow) {
      d.status = 401;
      d.body = "Jwt is expired";
      d.reply_headers = {{"www-authenticate", "Bearer error=\"invalid_token\""}};
    }
    return d;
  };
  Rig rig({}, echoApp, nullptr, nullptr, authn);
  const int32_t refused = rig.client.request(get("/refused"));
  rig.run();
  const H2Message& r = rig.client.messages[refused];
  CHECK(r.header(":status") == "401");
  CHECK(r.header("www-authenticate") == "Bearer error=\"invalid_token\"");
  CHECK(r.body == "Jwt is expired");
  CHECK(rig.app.messages.empty());
}

TEST_CASE("h2: a rate-limited stream gets 429 with retry-after, gRPC gets UNAVAILABLE", "[http2]") {
  Authorizer limiter = [](const RequestView& v) {
    AuthzDecision d;
    d.allow = v.path.find("limited") == std::string_view::npos;
    if (!d.allow) {
      d.status = 429;
      d.reply_headers = {{"retry-after", "2"}};
      d.response_flags = "RL";
    }
    return d;
  };
  Rig rig({}, echoApp, nullptr, nullptr, limiter);
  const int32_t ok = rig.client.request(get("/fine"));
  const int32_t limited = rig.client.request(get("/limited"));
  Fields grpc = {{":method", "POST"},
                 {":scheme", "http"},
                 {":authority", "svc"},
                 {":path", "/limited.v1.Svc/Get"},
                 {"content-type", "application/grpc"},
                 {"te", "trailers"}};
  const int32_t grpc_limited = rig.client.request(grpc, std::string("\0\0\0\0\0", 5));
  rig.run();
  CHECK(rig.client.messages[ok].header(":status") == "200");
  const H2Message& l = rig.client.messages[limited];
  CHECK(l.header(":status") == "429");
  CHECK(l.header("retry-after") == "2");
  CHECK(l.body == "local_rate_limited");
  const H2Message& g = rig.client.messages[grpc_limited];
  CHECK(g.header(":status") == "429");
  CHECK(g.header("grpc-status") == "14");
  CHECK(g.header("retry-after") == "2");
  CHECK(g.header("grpc-message") == "local_rate_limited");
  CHECK(rig.app.messages.size() == 1);
  CHECK_FALSE(rig.closed);
}

}  // namespace
}  // namespace ferry::http
