// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "http/http1_parser.h"

#include <catch2/catch.hpp>

#include "parse_util.h"

namespace ferry::http {
namespace {

using testing::parseAll;
using Kind = Http1Parser::Kind;

// Every accepted stream must give the same result however it is split.
testing::Transcript parseEverySplit(Kind kind, std::string_view wire, bool eof = false) {
  auto whole = parseAll(kind, wire, 0, {}, eof);
  for (size_t step : {1, 2, 3, 7, 13}) {
    INFO("step " << step);
    CHECK(parseAll(kind, wire, step, {}, eof) == whole);
  }
  return whole;
}

TEST_CASE("requests that are accepted", "[http1]") {
  struct Row {
    const char* name;
    std::string wire;
    std::vector<std::string> messages;
  };
  const Row rows[] = {
      {"simple GET", "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", {"GET /a body="}},
      {"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", {"GET / body="}},
      {"content-length body",
       "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
       {"POST /p body=hello"}},
      {"chunked with extension and trailers",
       "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5;name=val\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n",
       {"POST /c body=5;name=val\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"}},
      {"pipelined",
       "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
       {"GET /1 body=", "GET /2 body="}},
      {"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", {"GET / body="}},
      {"OWS around value", "GET / HTTP/1.1\r\nHost:   x \t\r\nX-Empty:\r\n\r\n", {"GET / body="}},
      {"obs-text in value",
       "GET / HTTP/1.1\r\nHost: x\r\nX-U: caf\xc3\xa9\r\n\r\n",
       {"GET / body="}},
      {"chunked is case-insensitive",
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ChUnKeD\r\n\r\n0\r\n\r\n",
       {"POST / body=0\r\n\r\n"}},
  };
  for (const Row& row : rows) {
    SECTION(row.name) {
      auto t = parseEverySplit(Kind::kRequest, row.wire);
      CHECK(t.error == "");
      CHECK(t.messages == row.messages);
    }
  }
}

TEST_CASE("requests that are refused, with the reason and status", "[http1]") {
  struct Row {
    const char* name;
    std::string wire;
    uint16_t status;
    const char* reason;
  };
  const std::string h = "Host: x\r\n";
  const Row rows[] = {
      {"CL with TE",
       "POST / HTTP/1.1\r\n" + h + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
       "both Content-Length and Transfer-Encoding"},
      {"TE with CL",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400,
       "both Content-Length and Transfer-Encoding"},
      {"differing CLs",
       "POST / HTTP/1.1\r\n" + h + "Content-Length: 3\r\nContent-Length: 4\r\n\r\n", 400,
       "duplicate Content-Length"},
      {"equal duplicate CLs",
       "POST / HTTP/1.1\r\n" + h + "Content-Length: 3\r\ncontent-length: 3\r\n\r\n", 400,
       "duplicate Content-Length"},
      {"CL list", "POST / HTTP/1.1\r\n" + h + "Content-Length: 3, 3\r\n\r\n", 400,
       "invalid Content-Length"},
      {"CL sign", "POST / HTTP/1.1\r\n" + h + "Content-Length: +3\r\n\r\n", 400,
       "invalid Content-Length"},
      {"CL overflow", "POST / HTTP/1.1\r\n" + h + "Content-Length: 99999999999999999999\r\n\r\n",
       400, "invalid Content-Length"},
      {"obs-fold", "GET / HTTP/1.1\r\n" + h + "X-A: a\r\n b\r\n\r\n", 400,
       "obsolete line folding (obs-fold)"},
      {"space before first field", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400,
       "obsolete line folding (obs-fold)"},
      {"bare LF terminator", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400, "bare LF line terminator"},
      {"bare LF in fields", "GET / HTTP/1.1\r\nHost: x\n\r\n", 400, "bare LF line terminator"},
      {"bare CR in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400,
       "bare CR in header field value"},
      {"bare CR in request line", "GET /\r HTTP/1.1\r\nHost: x\r\n\r\n", 400,
       "bare CR in start line"},
      {"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400,
       "whitespace between header field name and colon"},
      {"tab before colon", "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 400,
       "whitespace between header field name and colon"},
      {"invalid name char", "GET / HTTP/1.1\r\n" + h + "X(A): a\r\n\r\n", 400,
       "invalid character in header field name"},
      {"empty name", "GET / HTTP/1.1\r\n" + h + ": a\r\n\r\n", 400, "empty header field name"},
      {"no colon", "GET / HTTP/1.1\r\n" + h + "X-A\r\n\r\n", 400, "header field without a colon"},
      {"NUL in value",
       std::string("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
                   sizeof("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n") - 1),
       400, "NUL in header field value"},
      {"NUL in name",
       std::string("GET / HTTP/1.1\r\nHost: x\r\nX\0A: b\r\n\r\n",
                   sizeof("GET / HTTP/1.1\r\nHost: x\r\nX\0A: b\r\n\r\n") - 1),
       400, "NUL in header field name"},
      {"control char in value",
       "GET / HTTP/1.1\r\n" + h +
           "X-A: a\x01"
           "b\r\n\r\n",
       400, "invalid character in header field value"},
      {"NUL in target",
       std::string("GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n",
                   sizeof("GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n") - 1),
       400, "NUL in request target"},
      {"fragment in target", "GET /admin#x HTTP/1.1\r\n" + h + "\r\n", 400,
       "fragment ('#') in request target"},
      {"non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" + h + "\r\n", 400,
       "invalid character in request target"},
      {"missing Host", "GET / HTTP/1.1\r\n\r\n", 400,
       "missing Host header field in an HTTP/1.1 request"},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400,
       "more than one Host header field"},
      {"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400,
       "invalid Host header field"},
      {"Host with bad port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400,
       "invalid Host header field"},
      {"double space in request line", "GET  / HTTP/1.1\r\n" + h + "\r\n", 400,
       "malformed request line"},
      {"trailing space in request line", "GET / HTTP/1.1 \r\n" + h + "\r\n", 400,
       "malformed HTTP version"},
      {"lowercase version", "GET / http/1.1\r\n" + h + "\r\n", 400, "malformed HTTP version"},
      {"HTTP/2.0 in request line", "GET / HTTP/2.0\r\n" + h + "\r\n", 505,
       "unsupported HTTP major version"},
      {"bad method", "G(T / HTTP/1.1\r\n" + h + "\r\n", 400, "invalid method"},
      {"TE not ending in chunked",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, gzip\r\n\r\n", 400,
       "chunked must be the final transfer coding, once"},
      {"TE chunked twice",
       "POST / HTTP/1.1\r\n" + h +
           "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       400, "chunked must be the final transfer coding, once"},
      {"TE unknown coding", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip\r\n\r\n", 501,
       "unsupported transfer coding"},
      {"TE junk", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: \"chunked\"\r\n\r\n", 400,
       "malformed Transfer-Encoding"},
      {"TE empty element", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: ,chunked\r\n\r\n", 400,
       "malformed Transfer-Encoding"},
      {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
       "Transfer-Encoding in an HTTP/1.0 message"},
      {"bad chunk size", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
       400, "invalid chunk size"},
      {"chunk size overflow",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 400,
       "chunk size too large"},
      {"chunk data too long",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n", 400,
       "chunk data not followed by CRLF"},
      {"bare LF after chunk size",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n", 400,
       "invalid chunk size"},
      {"bare LF in chunk ext",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1;a\na\r\n0\r\n\r\n", 400,
       "bare LF in chunk extension"},
      {"CL in trailers",
       "POST / HTTP/1.1\r\n" + h +
           "Transfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 1\r\n\r\n",
       400, "framing or routing field in trailers"},
      {"obs-fold in trailers",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n c\r\n\r\n", 400,
       "obsolete line folding (obs-fold)"},
      {"bare LF in trailers",
       "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n0\r\nA: b\n\r\n", 400,
       "bare LF in trailer section"},
      {"too many empty lines first", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" + h + "\r\n", 400,
       "empty line before the start line"},
  };
  for (const Row& row : rows) {
    SECTION(row.name) {
      auto t = parseEverySplit(Kind::kRequest, row.wire);
      CHECK(t.messages.empty());
      CHECK(t.error == row.reason);
      CHECK(t.error_status == row.status);
    }
  }
}

TEST_CASE("size limits give 414 and 431", "[http1]") {
  Http1Limits limits;
  limits.max_start_line = 64;
  limits.max_head_bytes = 256;
  limits.max_headers = 3;
  const std::string long_target = "GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string big_head =
      "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(300, 'b') + "\r\n\r\n";
  const std::string many = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
  const std::string fits = "GET /" + std::string(40, 'a') + " HTTP/1.1\r\nHost: x\r\nA: 1\r\n\r\n";
  for (size_t step : {0, 1, 5}) {
    auto t = parseAll(Kind::kRequest, long_target, step, limits);
    CHECK(t.error_status == 414);
    t = parseAll(Kind::kRequest, big_head, step, limits);
    CHECK(t.error_status == 431);
    t = parseAll(Kind::kRequest, many, step, limits);
    CHECK(t.error_status == 431);
    CHECK(t.error == std::string("too many header fields"));
    t = parseAll(Kind::kRequest, fits, step, limits);
    CHECK(t.error == "");
    CHECK(t.messages.size() == 1);
  }
  // A chunk-extension flood is cut off too.
  const std::string ext = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;" +
                          std::string(5000, 'e') + "\r\na\r\n0\r\n\r\n";
  auto t = parseAll(Kind::kRequest, ext, 7);
  CHECK(t.error == std::string("chunk extension too long"));
}

TEST_CASE("message head fields: keep-alive, upgrade, expect, host", "[http1]") {
  auto headOf = [](std::string wire, auto check) {
    Http1Parser p(Kind::kRequest);
    std::string_view in(wire);
    auto ev = p.next(in);
    REQUIRE(ev.type == Http1Parser::Event::Type::kHead);
    check(p.head());
  };
  headOf("GET / HTTP/1.1\r\nHost: a.b:80\r\n\r\n", [](const MessageHead& h) {
    CHECK(h.keep_alive);
    CHECK(h.host == "a.b:80");
    CHECK_FALSE(h.upgrade);
  });
  headOf("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n",
         [](const MessageHead& h) { CHECK_FALSE(h.keep_alive); });
  headOf("GET / HTTP/1.0\r\n\r\n", [](const MessageHead& h) { CHECK_FALSE(h.keep_alive); });
  headOf("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
         [](const MessageHead& h) { CHECK(h.keep_alive); });
  headOf("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
         [](const MessageHead& h) { CHECK(h.upgrade); });
  headOf("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
         [](const MessageHead& h) { CHECK_FALSE(h.upgrade); });
  headOf("POST / HTTP/1.1\r\nHost: [::1]:8080\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
         [](const MessageHead& h) {
           CHECK(h.expect_continue);
           CHECK(h.host == "[::1]:8080");
           CHECK(h.framing == BodyFraming::kContentLength);
           CHECK(h.find("content-LENGTH") == std::optional<std::string_view>("1"));
         });
}

TEST_CASE("responses: framing depends on status and request", "[http1]") {
  SECTION("content-length and chunked responses, pipelined") {
    auto t = parseEverySplit(Kind::kResponse,
                             "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                             "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "2\r\nno\r\n0\r\n\r\n");
    CHECK(t.error == "");
    CHECK(t.messages == std::vector<std::string>{"200 body=ok", "404 body=2\r\nno\r\n0\r\n\r\n"});
  }
  SECTION("no reason phrase, 204 and 304 have no body, 1xx interim") {
    auto t = parseEverySplit(Kind::kResponse,
                             "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204\r\n\r\n"
                             "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n");
    CHECK(t.error == "");
    CHECK(t.messages == std::vector<std::string>{"100 body=", "204 body=", "304 body="});
  }
  SECTION("until close") {
    auto t = parseEverySplit(Kind::kResponse, "HTTP/1.1 200 OK\r\n\r\nstream", /*eof=*/true);
    CHECK(t.messages == std::vector<std::string>{"200 body=stream"});
  }
  SECTION("truncated body at close is an error") {
    auto t = parseAll(Kind::kResponse, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 0, {},
                      /*eof=*/true);
    CHECK(t.error == std::string("connection closed inside a message body"));
  }
  SECTION("response to HEAD and CONNECT") {
    Http1Parser p(Kind::kResponse);
    p.setRequestContext(/*head_request=*/true, false);
    std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n";
    std::string_view in(wire);
    REQUIRE(p.next(in).type == Http1Parser::Event::Type::kHead);
    CHECK(p.head().framing == BodyFraming::kNone);
    REQUIRE(p.next(in).type == Http1Parser::Event::Type::kMessageComplete);
    p.setRequestContext(false, /*connect_request=*/true);
    wire = "HTTP/1.1 200 Connection Established\r\n\r\nraw";
    in = wire;
    REQUIRE(p.next(in).type == Http1Parser::Event::Type::kHead);
    CHECK(p.head().framing == BodyFraming::kTunnel);
    CHECK(p.rawHead() == "HTTP/1.1 200 Connection Established\r\n\r\n");
    CHECK(in == "raw");
  }
  SECTION("malformed responses map to 502") {
    auto t = parseAll(Kind::kResponse, "HTTP/1.1 20 OK\r\n\r\n");
    CHECK(t.error_status == 502);
    t = parseAll(Kind::kResponse,
                 "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
    CHECK(t.error == std::string("both Content-Length and Transfer-Encoding"));
  }
}

TEST_CASE("the head buffer is reused across pipelined messages", "[http1]") {
  Http1Parser p(Kind::kRequest);
  std::string one = "GET /" + std::string(500, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string wire;
  for (int i = 0; i < 50; ++i) {
    wire += one;
  }
  std::string_view in(wire);
  int messages = 0;
  while (!in.empty()) {
    auto ev = p.next(in);
    REQUIRE(ev.type != Http1Parser::Event::Type::kError);
    if (ev.type == Http1Parser::Event::Type::kMessageComplete) {
      ++messages;
    }
  }
  if (p.next(in).type == Http1Parser::Event::Type::kMessageComplete) {
    ++messages;
  }
  CHECK(messages == 50);
  CHECK(p.idle());
}

}  // namespace
}  // namespace ferry::http
