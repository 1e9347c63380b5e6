// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The HBONE client: one pooled mTLS connection to a destination's port 15008 carrying many
// CONNECT streams. The agent's pool keys these by (source identity, destination pod) and opens
// another when acceptsNewStreams() is false.

#include <memory>
#include <optional>
#include <string_view>

#include "hbone/connection.h"

namespace ferry::hbone {

class HboneClient : public HboneConnection {
 public:
  // `expected_peer`: the destination workload's identity when known; a server presenting any
  // other SVID fails the handshake. The ClientHello is in networkOut() on return.
  static absl::StatusOr<std::unique_ptr<HboneClient>> create(
      std::shared_ptr<const tls::TlsContext> ctx,
      std::optional<tls::SpiffeId> expected_peer = std::nullopt, HboneSettings settings = {});

  // Opens `CONNECT <target>`. Usable before the handshake completes (the request waits); data
  // may be written at once. The answer arrives as kResponse (200, or a refusal followed by
  // kClosed).
  // `baggage`: the source workload's metadata (baggage.h), sent as a `baggage` header when
  // not empty.
  // `resume`: a `ferry-resume` value (resume.h: an offer or a resume) when not empty.
  absl::StatusOr<StreamId> openStream(const Authority& target, std::string_view baggage = {},
                                      std::string_view resume = {});
  // Sends `authority` verbatim, unchecked: for relaying an authority as received, and for
  // tests of the server's validation.
  absl::StatusOr<StreamId> openStreamVerbatim(std::string authority, std::string_view baggage = {},
                                              std::string_view resume = {});
  // False once the peer sent GOAWAY, the connection failed, or its stream limit is reached.
  bool acceptsNewStreams() const;
  // The server's answer for `id` (0 until it arrives).
  int responseStatus(StreamId id) const;

 private:
  HboneClient(std::unique_ptr<tls::TlsSession> tls, HboneSettings settings, bool server)
      : HboneConnection(std::move(tls), settings, server) {}
  void onRequestHeaders(Stream&) override {}
  void onResponseHeaders(Stream& s) override;
  bool mayDeliver(const Stream&) const override { return true; }
};

}  // namespace ferry::hbone
