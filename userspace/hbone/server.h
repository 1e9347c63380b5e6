// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The HBONE server side of one accepted mTLS connection (the agent's in-pod port 15008).
// Every CONNECT stream is validated (method CONNECT, `:authority` a literal ip:port) and then
// offered to the accept callback together with the verified peer SPIFFE ID; no byte reaches
// the app side before it is accepted.

#include <functional>
#include <memory>
#include <string_view>

#include "hbone/connection.h"

namespace ferry::hbone {

// Views valid during the accept callback only (the baggage's text is dropped after it).
struct StreamRequest {
  StreamId id;
  const tls::SpiffeId& peer;   // verified from the peer's certificate chain
  const Authority& authority;  // the original destination
  // The `baggage` header as received (several joined with ','; "" when absent or longer than
  // kMaxBaggageBytes): the source's claim about itself, unverified (baggage.h).
  std::string_view baggage;
  // The `ferry-resume` header as received ("" when absent): an offer or a resume (resume.h).
  std::string_view resume;
};

// Return 200 to accept, an HTTP error status (403 policy, 503 destination down, ...) to refuse,
// or kDeferDecision to answer later with HboneServer::respond() (e.g. after connecting).
using AcceptCallback = std::function<int(const StreamRequest&)>;
inline constexpr int kDeferDecision = 0;

class HboneServer : public HboneConnection {
 public:
  static absl::StatusOr<std::unique_ptr<HboneServer>> create(
      std::shared_ptr<const tls::TlsContext> ctx, AcceptCallback accept,
      HboneSettings settings = {});

  // Sets the `ferry-resume` value sent with the stream's answer (call from the accept callback
  // or before respond()).
  void setResumeAnswer(StreamId id, std::string value);
  // Answers a deferred stream: 200 opens it, anything else refuses it.
  absl::Status respond(StreamId id, int status);
  // The validated destination of an open or pending stream.
  const Authority* authority(StreamId id) const;

 private:
  HboneServer(std::unique_ptr<tls::TlsSession> tls, HboneSettings settings, bool server)
      : HboneConnection(std::move(tls), settings, server) {}
  void answer(Stream& s, int status);
  void onRequestHeaders(Stream& s) override;
  void onResponseHeaders(Stream&) override {}
  bool mayDeliver(const Stream& s) const override { return s.status == 200; }

  AcceptCallback accept_;
};

}  // namespace ferry::hbone
