// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Who may open a stream, to where: peer certificates, :authority validation, the accept
// callback, GOAWAY and stream limits.

#include <catch2/catch.hpp>
#include <string>

#include "pair.h"

namespace ferry::hbone::testing {
namespace {

std::string readAll(HboneConnection& conn, StreamId id) {
  std::string out;
  uint8_t buf[4096];
  while (true) {
    ReadResult r = conn.read(id, absl::MakeSpan(buf));
    out.append(reinterpret_cast<char*>(buf), r.bytes);
    if (r.bytes == 0) {
      return out;
    }
  }
}

int responseOf(const Pair& p, StreamId id) {
  for (const HboneEvent& e : p.client_events) {
    if (e.type == HboneEventType::kResponse && e.stream == id) {
      return e.status;
    }
  }
  return 0;
}

TEST_CASE("peers with a bad certificate are refused at the handshake, naming the reason") {
  fakes::FakeCa ca;
  fakes::FakeCa other_ca;
  const absl::Time now = absl::Now();
  struct Row {
    const char* description;
    fakes::IssuedCert client_cert;
    const char* server_reason;
  };
  std::vector<Row> rows;
  rows.push_back({"another CA", other_ca.issue("shop", "cart"), "not signed by a trusted root"});
  rows.push_back(
      {"expired", ca.issue("shop", "cart", absl::Hours(1), now - absl::Hours(2)), "expired at"});
  rows.push_back({"wrong trust domain", ca.issue(tls::SpiffeId{"evil.domain", "shop", "cart"}),
                  "trust domain 'evil.domain'"});
  for (Row& row : rows) {
    INFO(row.description);
    bool accept_called = false;
    auto client = HboneClient::create(contextFor(row.client_cert, ca.bundle()));
    REQUIRE(client.ok());
    auto server = HboneServer::create(contextFor(ca.issue("shop", "db"), ca.bundle()),
                                      [&](const StreamRequest&) {
                                        accept_called = true;
                                        return 200;
                                      });
    REQUIRE(server.ok());
    Pair p{std::move(*client), std::move(*server)};
    absl::StatusOr<StreamId> id = p.client->openStream(*Authority::parse("10.244.2.11:80"));
    REQUIRE(id.ok());
    p.client->write(*id, bytes("secret"));
    p.pump();
    REQUIRE_FALSE(p.server_status.ok());
    CHECK(p.server_status.code() == absl::StatusCode::kPermissionDenied);
    CHECK_THAT(std::string(p.server_status.message()), Catch::Contains(row.server_reason));
    CHECK(p.server->finished());
    CHECK_FALSE(accept_called);
    // The client learns from the alert; its stream dies with the connection.
    REQUIRE_FALSE(p.client_status.ok());
    CHECK_THAT(std::string(p.client_status.message()), Catch::Contains("alert"));
    CHECK(Pair::has(p.client_events, HboneEventType::kClosed, *id));
    CHECK_FALSE(p.client->acceptsNewStreams());
  }
}

TEST_CASE("the client refuses a server that is not the expected destination identity") {
  fakes::FakeCa ca;
  auto client = HboneClient::create(contextFor(ca.issue("shop", "cart"), ca.bundle()),
                                    tls::SpiffeId{"cluster.local", "shop", "db"});
  REQUIRE(client.ok());
  auto server = HboneServer::create(contextFor(ca.issue("shop", "imposter"), ca.bundle()), {});
  REQUIRE(server.ok());
  Pair p{std::move(*client), std::move(*server)};
  p.pump();
  REQUIRE_FALSE(p.client_status.ok());
  CHECK_THAT(std::string(p.client_status.message()),
             Catch::Contains("peer is spiffe://cluster.local/ns/shop/sa/imposter, expected"));
}

TEST_CASE("a malformed :authority is answered 400 before the accept callback") {
  fakes::FakeCa ca;
  int accept_calls = 0;
  PairOptions options;
  options.accept = [&](const StreamRequest&) {
    ++accept_calls;
    return 200;
  };
  Pair p = makePair(ca, std::move(options));
  const char* rows[] = {
      "backend.shop.svc:80",  // names are not resolved here
      "10.244.2.11",          // no port
      "10.244.2.11:0",        // port out of range
      "10.244.2.11:65536",    //
      "10.244.2.11:80x",      //
      "10.244.2.11:",         //
      "010.244.2.11:80",      // not canonical dotted quad
      "[fd00::1:80",          // unbalanced bracket
      "[not-v6]:80",          //
      "fd00::1:80",           // IPv6 without brackets
      ":80",                  //
  };
  for (const char* authority : rows) {
    INFO("authority " << authority);
    absl::StatusOr<StreamId> id = p.client->openStreamVerbatim(authority);
    REQUIRE(id.ok());
    p.pump();
    CHECK(responseOf(p, *id) == 400);
    CHECK(Pair::has(p.client_events, HboneEventType::kClosed, *id));
    CHECK_FALSE(p.server->hasStream(*id));
  }
  CHECK(accept_calls == 0);
  CHECK(p.client_status.ok());
  CHECK(p.server_status.ok());
  // The connection still serves well-formed requests.
  absl::StatusOr<StreamId> ok = p.client->openStreamVerbatim("[fd00:244::2:11]:80");
  REQUIRE(ok.ok());
  p.pump();
  CHECK(responseOf(p, *ok) == 200);
  CHECK(accept_calls == 1);
}

TEST_CASE("authority parsing keeps address family, address and port") {
  auto v4 = Authority::parse("10.244.2.11:8080");
  REQUIRE(v4.ok());
  CHECK(v4->family == AF_INET);
  CHECK(v4->port == 8080);
  CHECK(v4->toString() == "10.244.2.11:8080");
  auto v6 = Authority::parse("[fd00:244:0::2:11]:443");
  REQUIRE(v6.ok());
  CHECK(v6->family == AF_INET6);
  CHECK(v6->toString() == "[fd00:244::2:11]:443");
  sockaddr_storage ss{};
  socklen_t len = v6->toSockaddr(&ss);
  CHECK(len == sizeof(sockaddr_in6));
  CHECK(Authority::fromSockaddr(reinterpret_cast<sockaddr*>(&ss)) == *v6);
  CHECK_THAT(std::string(Authority::parse("x:1").status().message()),
             Catch::Contains("not a literal IPv4"));
}

TEST_CASE("the accept callback sees the peer and destination and may refuse") {
  fakes::FakeCa ca;
  PairOptions options;
  options.accept = [](const StreamRequest& req) {
    CHECK(req.peer.uri() == "spiffe://cluster.local/ns/shop/sa/cart");
    if (req.authority.port == 22) {
      return 403;  // policy says no
    }
    if (req.authority.port == 9) {
      return 503;  // nothing listening
    }
    return 200;
  };
  Pair p = makePair(ca, std::move(options));
  for (auto [authority, status] :
       {std::pair{"10.244.2.11:22", 403}, std::pair{"10.244.2.11:9", 503},
        std::pair{"10.244.2.11:80", 200}}) {
    INFO(authority);
    absl::StatusOr<StreamId> id = p.client->openStream(*Authority::parse(authority));
    REQUIRE(id.ok());
    p.client->write(*id, bytes("hello"));
    p.pump();
    CHECK(responseOf(p, *id) == status);
    if (status == 200) {
      CHECK(readAll(*p.server, *id) == "hello");
      CHECK(p.client->hasStream(*id));
    } else {
      // Nothing reached the app side, nothing stays buffered, the stream is gone on both ends.
      CHECK_FALSE(Pair::has(p.server_events, HboneEventType::kStreamOpened, *id));
      CHECK_FALSE(Pair::has(p.server_events, HboneEventType::kReadable, *id));
      CHECK_FALSE(p.server->hasStream(*id));
      CHECK_FALSE(p.client->hasStream(*id));
      CHECK(Pair::has(p.client_events, HboneEventType::kClosed, *id));
    }
  }
  CHECK(p.server->bufferedBytes() == 0);
}

TEST_CASE("a deferred decision holds early bytes back until the stream is accepted") {
  fakes::FakeCa ca;
  std::vector<StreamId> pending;
  PairOptions options;
  options.accept = [&](const StreamRequest& req) {
    pending.push_back(req.id);
    return kDeferDecision;
  };
  Pair p = makePair(ca, std::move(options));
  absl::StatusOr<StreamId> id = p.client->openStream(*Authority::parse("10.244.2.11:80"));
  REQUIRE(id.ok());
  p.client->write(*id, bytes("early bytes"));
  p.pump();
  REQUIRE(pending == std::vector<StreamId>{*id});
  CHECK(responseOf(p, *id) == 0);
  CHECK(p.server->peek(*id).empty());
  CHECK(p.server->read(*id, absl::Span<uint8_t>()).bytes == 0);
  CHECK_FALSE(Pair::has(p.server_events, HboneEventType::kReadable, *id));
  REQUIRE(p.server->authority(*id) != nullptr);
  CHECK(p.server->authority(*id)->toString() == "10.244.2.11:80");

  REQUIRE(p.server->respond(*id, 200).ok());
  CHECK(p.server->respond(*id, 200).code() == absl::StatusCode::kFailedPrecondition);
  p.pump();
  CHECK(responseOf(p, *id) == 200);
  CHECK(Pair::has(p.server_events, HboneEventType::kReadable, *id));
  CHECK(readAll(*p.server, *id) == "early bytes");

  // And a deferred refusal.
  absl::StatusOr<StreamId> second = p.client->openStream(*Authority::parse("10.244.2.11:81"));
  REQUIRE(second.ok());
  p.pump();
  REQUIRE(p.server->respond(*second, 503).ok());
  p.pump();
  CHECK(responseOf(p, *second) == 503);
  CHECK_FALSE(p.server->hasStream(*second));
  CHECK(p.server->respond(*second, 200).code() == absl::StatusCode::kNotFound);
}

TEST_CASE("GOAWAY drains: streams in flight finish, new ones go elsewhere") {
  fakes::FakeCa ca;
  Pair p = makePair(ca);
  absl::StatusOr<StreamId> id = p.client->openStream(*Authority::parse("10.244.2.11:80"));
  REQUIRE(id.ok());
  p.pump();
  p.server->drain();
  p.pump();
  CHECK(Pair::has(p.client_events, HboneEventType::kGoaway));
  CHECK(p.client->goawayReceived());
  CHECK_FALSE(p.client->acceptsNewStreams());
  CHECK(p.client->openStream(*Authority::parse("10.244.2.11:80")).status().code() ==
        absl::StatusCode::kUnavailable);
  CHECK_FALSE(p.server->finished());

  // The stream in flight still works, in both directions, to a clean close.
  CHECK(p.client->write(*id, bytes("after goaway")) == 12);
  p.client->shutdownWrite(*id);
  p.pump();
  CHECK(readAll(*p.server, *id) == "after goaway");
  CHECK(p.server->write(*id, bytes("bye")) == 3);
  p.server->shutdownWrite(*id);
  p.pump();
  CHECK(readAll(*p.client, *id) == "bye");
  p.pump();
  CHECK(p.server->activeStreams() == 0);
  CHECK(p.server->finished());
  CHECK(p.client->finished());
}

TEST_CASE("a pooled connection reports when its stream limit is reached") {
  fakes::FakeCa ca;
  PairOptions options;
  options.server_settings.max_concurrent_streams = 3;
  Pair p = makePair(ca, std::move(options));
  std::vector<StreamId> ids;
  while (p.client->acceptsNewStreams() && ids.size() < 10) {
    absl::StatusOr<StreamId> id = p.client->openStream(*Authority::parse("10.244.2.11:80"));
    REQUIRE(id.ok());
    ids.push_back(*id);
  }
  CHECK(ids.size() == 3);
  p.pump();
  p.client->reset(ids[0]);
  p.pump();
  CHECK(p.client->acceptsNewStreams());
}

}  // namespace
}  // namespace ferry::hbone::testing
