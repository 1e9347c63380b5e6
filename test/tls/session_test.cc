// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "tls/session.h"

#include <catch2/catch.hpp>
#include <string>

#include "fakes/ca/fake_ca.h"
#include "tls/context.h"

namespace ferry::tls {
namespace {

TlsIdentity identityOf(const fakes::IssuedCert& cert) {
  absl::StatusOr<TlsIdentity> id = TlsIdentity::fromPem(cert.cert_pem, cert.key_pem);
  REQUIRE(id.ok());
  return std::move(*id);
}

std::shared_ptr<const TlsContext> contextFor(const fakes::IssuedCert& cert,
                                             std::shared_ptr<const TrustBundle> bundle,
                                             TlsContextOptions options = {}) {
  auto ctx = TlsContext::create(identityOf(cert), std::move(bundle), std::move(options));
  REQUIRE(ctx.ok());
  return *ctx;
}

std::unique_ptr<TlsSession> session(std::shared_ptr<const TlsContext> ctx, TlsRole role,
                                    std::optional<SpiffeId> expected = std::nullopt) {
  auto s = TlsSession::create(std::move(ctx), role, std::move(expected));
  REQUIRE(s.ok());
  return std::move(*s);
}

void transfer(TlsSession& from, TlsSession& to) {
  to.networkIn().append(from.networkOut().readable());
  from.networkOut().consume(from.networkOut().size());
}

struct HandshakeResult {
  absl::Status client;
  absl::Status server;
};

// Runs both handshakes to completion or failure, then lets the client read once so an alert
// the server sent after the client finished (TLS 1.3 client auth) reaches it.
HandshakeResult handshake(TlsSession& client, TlsSession& server) {
  HandshakeResult r;
  for (int round = 0; round < 10; ++round) {
    if (r.client.ok()) {
      r.client = client.handshake();
    }
    transfer(client, server);
    if (r.server.ok()) {
      r.server = server.handshake();
    }
    transfer(server, client);
    if (client.handshakeDone() && (server.handshakeDone() || !r.server.ok())) {
      break;
    }
    if (!r.client.ok() && !r.server.ok()) {
      break;
    }
  }
  if (r.client.ok() && client.handshakeDone()) {
    uint8_t buf[64];
    absl::StatusOr<size_t> n = client.read(absl::MakeSpan(buf));
    r.client = n.status();
  }
  return r;
}

TEST_CASE("mutual TLS 1.3 with ALPN h2 verifies both SPIFFE IDs and carries data") {
  fakes::FakeCa ca;
  auto client = session(contextFor(ca.issue("shop", "cart"), ca.bundle()), TlsRole::kClient,
                        SpiffeId{"cluster.local", "shop", "db"});
  auto server = session(contextFor(ca.issue("shop", "db"), ca.bundle()), TlsRole::kServer);
  HandshakeResult r = handshake(*client, *server);
  REQUIRE(r.client.ok());
  REQUIRE(r.server.ok());
  REQUIRE(client->handshakeDone());
  REQUIRE(server->handshakeDone());
  CHECK(client->peer().uri() == "spiffe://cluster.local/ns/shop/sa/db");
  CHECK(server->peer().uri() == "spiffe://cluster.local/ns/shop/sa/cart");
  CHECK(client->alpn() == "h2");
  CHECK(server->alpn() == "h2");
  CHECK(server->cipherSuite() == "TLS_AES_128_GCM_SHA256");

  const std::string msg = "hello over mTLS";
  REQUIRE(client->write({reinterpret_cast<const uint8_t*>(msg.data()), msg.size()}).ok());
  transfer(*client, *server);
  uint8_t buf[64];
  absl::StatusOr<size_t> n = server->read(absl::MakeSpan(buf));
  REQUIRE(n.ok());
  CHECK(std::string(reinterpret_cast<char*>(buf), *n) == msg);
  // Ciphertext never contains the plaintext.
  REQUIRE(server->write({reinterpret_cast<const uint8_t*>(msg.data()), msg.size()}).ok());
  std::string wire(reinterpret_cast<const char*>(server->networkOut().data()),
                   server->networkOut().size());
  CHECK(wire.find(msg) == std::string::npos);

  client->shutdown();
  transfer(*client, *server);
  n = server->read(absl::MakeSpan(buf));
  REQUIRE(n.ok());
  CHECK(*n == 0);
  CHECK(server->peerClosed());
}

struct RefusalRow {
  const char* description;
  const char* server_reason;  // what the refusing server reports
  const char* client_reason;  // what the refused client learns from the alert
};

TEST_CASE("the server refuses client certificates breaking a rule, naming the reason") {
  fakes::FakeCa ca;
  fakes::FakeCa other_ca;
  const absl::Time now = absl::Now();
  auto server_ctx = contextFor(ca.issue("shop", "db"), ca.bundle());

  struct Case {
    RefusalRow row;
    fakes::IssuedCert cert;
    std::shared_ptr<const TrustBundle> client_bundle;
  };
  std::vector<Case> cases;
  cases.push_back({{"another CA", "not signed by a trusted root", "unknown ca"},
                   other_ca.issue("shop", "cart"),
                   ca.bundle()});
  cases.push_back({{"expired", "expired at", "certificate expired"},
                   ca.issue("shop", "cart", absl::Hours(1), now - absl::Hours(3)),
                   ca.bundle()});
  cases.push_back({{"wrong trust domain", "trust domain 'evil.domain'", "alert"},
                   ca.issue(SpiffeId{"evil.domain", "shop", "cart"}),
                   ca.bundle()});
  for (Case& c : cases) {
    INFO(c.row.description);
    // The client context needs a valid SVID shape only; verification is the server's.
    auto ctx = TlsContext::create(identityOf(c.cert), c.client_bundle);
    REQUIRE(ctx.ok());
    auto client = session(*ctx, TlsRole::kClient);
    auto server = session(server_ctx, TlsRole::kServer);
    HandshakeResult r = handshake(*client, *server);
    REQUIRE_FALSE(r.server.ok());
    CHECK(r.server.code() == absl::StatusCode::kPermissionDenied);
    CHECK_THAT(std::string(r.server.message()), Catch::Contains(c.row.server_reason));
    REQUIRE_FALSE(r.client.ok());
    CHECK_THAT(std::string(r.client.message()), Catch::Contains(c.row.client_reason));
  }
}

TEST_CASE("the client refuses a server from another CA or with an unexpected identity") {
  fakes::FakeCa ca;
  fakes::FakeCa other_ca;
  auto client_ctx = contextFor(ca.issue("shop", "cart"), ca.bundle());
  SECTION("another CA") {
    auto client = session(client_ctx, TlsRole::kClient);
    auto server = session(contextFor(other_ca.issue("shop", "db"), ca.bundle()), TlsRole::kServer);
    HandshakeResult r = handshake(*client, *server);
    REQUIRE_FALSE(r.client.ok());
    CHECK_THAT(std::string(r.client.message()), Catch::Contains("not signed by a trusted root"));
    CHECK_FALSE(server->handshakeDone());
  }
  SECTION("unexpected identity") {
    auto client = session(client_ctx, TlsRole::kClient, SpiffeId{"cluster.local", "shop", "db"});
    auto server = session(contextFor(ca.issue("shop", "imposter"), ca.bundle()), TlsRole::kServer);
    HandshakeResult r = handshake(*client, *server);
    REQUIRE_FALSE(r.client.ok());
    CHECK_THAT(std::string(r.client.message()),
               Catch::Contains("peer is spiffe://cluster.local/ns/shop/sa/imposter, expected "
                               "spiffe://cluster.local/ns/shop/sa/db"));
  }
}

TEST_CASE("certificate validity follows the context's clock") {
  fakes::FakeCa ca;
  absl::Time fake_now = absl::Now();
  TlsContextOptions options;
  options.clock = [&fake_now] { return fake_now; };
  auto server_ctx = contextFor(ca.issue("shop", "db"), ca.bundle(), options);
  auto client_ctx = contextFor(ca.issue("shop", "cart", absl::Hours(1)), ca.bundle());
  {
    auto client = session(client_ctx, TlsRole::kClient);
    auto server = session(server_ctx, TlsRole::kServer);
    HandshakeResult r = handshake(*client, *server);
    CHECK(r.server.ok());
    CHECK(server->handshakeDone());
  }
  fake_now += absl::Hours(2);
  auto client = session(client_ctx, TlsRole::kClient);
  auto server = session(server_ctx, TlsRole::kServer);
  HandshakeResult r = handshake(*client, *server);
  REQUIRE_FALSE(r.server.ok());
  CHECK_THAT(std::string(r.server.message()), Catch::Contains("expired at"));
}

TEST_CASE("rotation swaps certificates and trust bundles for new connections only") {
  fakes::FakeCa old_ca;
  fakes::FakeCa new_ca;
  auto creds = TlsCredentials::create(identityOf(old_ca.issue("shop", "db", absl::Hours(1))),
                                      old_ca.bundle());
  REQUIRE(creds.ok());
  std::shared_ptr<const TlsContext> before = (*creds)->current();
  auto old_client_ctx = contextFor(old_ca.issue("shop", "cart"), old_ca.bundle());

  // A session made before the rotation keeps working after it.
  auto early_client = session(old_client_ctx, TlsRole::kClient);
  auto early_server = session(before, TlsRole::kServer);

  SECTION("a new certificate for the same identity") {
    REQUIRE((*creds)->updateIdentity(identityOf(old_ca.issue("shop", "db", absl::Hours(5)))).ok());
    CHECK((*creds)->current() != before);
    CHECK((*creds)->current()->notAfter() > before->notAfter() + absl::Hours(3));
    auto bad = (*creds)->updateIdentity(identityOf(old_ca.issue("shop", "other")));
    CHECK_THAT(std::string(bad.message()), Catch::Contains("rotation cannot change identity"));
  }
  SECTION("a new trust bundle") {
    auto both = TrustBundle::fromPem(old_ca.rootPem() + new_ca.rootPem());
    REQUIRE(both.ok());
    REQUIRE((*creds)->updateIdentity(identityOf(new_ca.issue("shop", "db"))).ok());
    REQUIRE((*creds)->updateTrustBundle(*both).ok());
    // Clients trust both roots too, as they would mid-rotation.
    auto old_client_both = contextFor(old_ca.issue("shop", "cart"), *both);
    auto new_client_both = contextFor(new_ca.issue("shop", "cart"), *both);
    for (auto* client_ctx : {&old_client_both, &new_client_both}) {
      auto client = session(*client_ctx, TlsRole::kClient);
      auto server = session((*creds)->current(), TlsRole::kServer);
      HandshakeResult r = handshake(*client, *server);
      CHECK(r.server.ok());
    }
    REQUIRE((*creds)->updateTrustBundle(new_ca.bundle()).ok());
    auto client = session(old_client_both, TlsRole::kClient);
    auto server = session((*creds)->current(), TlsRole::kServer);
    HandshakeResult r = handshake(*client, *server);
    CHECK_THAT(std::string(r.server.message()), Catch::Contains("not signed by a trusted root"));
  }
  before.reset();  // the early session holds its own reference
  HandshakeResult r = handshake(*early_client, *early_server);
  CHECK(r.client.ok());
  CHECK(r.server.ok());
  CHECK(early_server->peer().uri() == "spiffe://cluster.local/ns/shop/sa/cart");
}

TEST_CASE("identities are refused when the key does not match or the leaf is no SVID") {
  fakes::FakeCa ca;
  fakes::IssuedCert a = ca.issue("shop", "a");
  fakes::IssuedCert b = ca.issue("shop", "b");
  auto mismatched = TlsIdentity::fromPem(a.cert_pem, b.key_pem);
  CHECK_THAT(std::string(mismatched.status().message()), Catch::Contains("does not match"));
  fakes::IssuedCert raw = ca.issueRaw({}, false);
  auto not_svid = TlsIdentity::fromPem(raw.cert_pem, raw.key_pem);
  CHECK_THAT(std::string(not_svid.status().message()), Catch::Contains("not an SVID"));
}

}  // namespace
}  // namespace ferry::tls
