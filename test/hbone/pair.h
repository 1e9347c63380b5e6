// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// An HBONE client and server joined in memory: pump() moves ciphertext both ways (optionally
// holding one direction back, like a full socket) and collects each side's events.

#include <catch2/catch.hpp>
#include <memory>
#include <vector>

#include "fakes/ca/fake_ca.h"
#include "hbone/client.h"
#include "hbone/server.h"

namespace ferry::hbone::testing {

inline std::shared_ptr<const tls::TlsContext> contextFor(
    const fakes::IssuedCert& cert, std::shared_ptr<const tls::TrustBundle> bundle,
    tls::TlsContextOptions options = {}) {
  auto identity = tls::TlsIdentity::fromPem(cert.cert_pem, cert.key_pem);
  REQUIRE(identity.ok());
  auto ctx = tls::TlsContext::create(*identity, std::move(bundle), std::move(options));
  REQUIRE(ctx.ok());
  return *ctx;
}

inline absl::Span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Pair {
  std::unique_ptr<HboneClient> client;
  std::unique_ptr<HboneServer> server;
  std::vector<HboneEvent> client_events;  // accumulated until the test clears them
  std::vector<HboneEvent> server_events;
  absl::Status client_status;
  absl::Status server_status;
  bool hold_client_to_server = false;  // simulate a socket that accepts nothing
  bool hold_server_to_client = false;

  // Moves bytes until nothing moves (bounded), returning the number of rounds that moved bytes.
  int pump(int max_rounds = 10000) {
    std::vector<HboneEvent> scratch;
    int moved_rounds = 0;
    for (int round = 0; round < max_rounds; ++round) {
      bool moved = false;
      if (!hold_client_to_server && !client->networkOut().empty()) {
        server->networkIn().append(client->networkOut().readable());
        client->networkOut().consume(client->networkOut().size());
        moved = true;
        if (client_status.ok()) {
          client_status = client->onNetworkOutputDrained();
        }
        if (server_status.ok()) {
          server_status = server->onNetworkInput();
        }
      }
      if (!hold_server_to_client && !server->networkOut().empty()) {
        client->networkIn().append(server->networkOut().readable());
        server->networkOut().consume(server->networkOut().size());
        moved = true;
        if (server_status.ok()) {
          server_status = server->onNetworkOutputDrained();
        }
        if (client_status.ok()) {
          client_status = client->onNetworkInput();
        }
      }
      client->takeEvents(scratch);
      client_events.insert(client_events.end(), scratch.begin(), scratch.end());
      server->takeEvents(scratch);
      server_events.insert(server_events.end(), scratch.begin(), scratch.end());
      if (!moved) {
        break;
      }
      ++moved_rounds;
    }
    return moved_rounds;
  }

  static bool has(const std::vector<HboneEvent>& events, HboneEventType type, StreamId id = -1) {
    for (const HboneEvent& e : events) {
      if (e.type == type && (id < 0 || e.stream == id)) {
        return true;
      }
    }
    return false;
  }
};

struct PairOptions {
  HboneSettings client_settings;
  HboneSettings server_settings;
  AcceptCallback accept;  // default: accept everything
};

// A client and a server context made once, for tests that open many connections.
struct PairContexts {
  std::shared_ptr<const tls::TlsContext> client;
  std::shared_ptr<const tls::TlsContext> server;
  tls::SpiffeId server_id;
};

inline PairContexts makeContexts(const fakes::FakeCa& ca) {
  return {contextFor(ca.issue("shop", "cart"), ca.bundle()),
          contextFor(ca.issue("shop", "db"), ca.bundle()),
          tls::SpiffeId{ca.trustDomain(), "shop", "db"}};
}

// A new pair that has moved no bytes yet: the client's ClientHello waits in its networkOut(), so
// whatever is opened and written before the first pump() leaves with the connection's first
// frames.
inline Pair newPair(const PairContexts& contexts, PairOptions options = {}) {
  Pair p;
  auto client = HboneClient::create(contexts.client, contexts.server_id, options.client_settings);
  REQUIRE(client.ok());
  auto server =
      HboneServer::create(contexts.server, std::move(options.accept), options.server_settings);
  REQUIRE(server.ok());
  p.client = std::move(*client);
  p.server = std::move(*server);
  return p;
}

// A connected pair (handshake done) with identities from one fake CA.
inline Pair makePair(const fakes::FakeCa& ca, PairOptions options = {}) {
  Pair p = newPair(makeContexts(ca), std::move(options));
  p.pump();
  REQUIRE(p.client_status.ok());
  REQUIRE(p.server_status.ok());
  REQUIRE(p.client->handshakeDone());
  REQUIRE(p.server->handshakeDone());
  return p;
}

}  // namespace ferry::hbone::testing
