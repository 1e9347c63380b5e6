// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// One request stream of the routed h2c outbound (h2_outbound.h): its route decision, its
// upstream attempts (each try a stream on an h2 upstream connection, h2_upstream.h), the
// response relayed back with its trailers, and its source-side report.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "agent/http/h2_upstream.h"
#include "agent/http/loop_clock.h"
#include "agent/http/routed_exchange.h"
#include "agent/http/upstream_attempts.h"
#include "agent/io/event_loop.h"
#include "agent/worker_context.h"

namespace ferry::agent {

// What a stream needs of the client connection that holds it (H2Outbound).
class H2ClientSide {
 public:
  virtual ~H2ClientSide() = default;
  virtual nghttp2_session* session() = 0;
  virtual WorkerContext& ctx() = 0;
  virtual const RoutedClient& who() const = 0;
  virtual bool closed() const = 0;
  // Sends what the session has (deferred while inside its callbacks).
  virtual void flush() = 0;
};

// One client stream: a routed request.
class H2RoutedStream final : public Deferred, private AttemptIo, public H2UpstreamStream {
 public:
  H2RoutedStream(H2ClientSide& owner, int32_t id);
  ~H2RoutedStream() override { attempts_.finish(); }

  // Client side events.
  void header(std::string name, std::string value);
  void headersDone(bool end_stream);
  void body(std::string_view data);
  void bodyDone();
  void clientClosed();
  // The client data provider.
  ssize_t readResponse(uint8_t* buf, size_t room, uint32_t* flags);

 private:
  // AttemptIo
  const char* connect(const routing::EndpointRef& endpoint) override;
  void release(bool reusable) override;
  void answer(int status, std::string_view text, const char* flags) override;
  void reset() override;
  bool retriable() const override { return body_complete_ && !overflow_ && !client_closed_; }
  std::function<void()> grantCallback() override;
  void wake() override;
  // H2UpstreamStream
  long upBody(uint8_t* buf, size_t room, bool* eof) override;
  H2Fields upRequestTrailers() override { return request_trailers_; }
  void upHeaders(int status, H2Fields fields, bool end) override;
  void upData(std::string_view data) override;
  void upTrailers(H2Fields fields) override;
  void upClosed(bool ended, uint32_t error, bool maybe_processed) override;

  void route();
  bool forwardedFields(std::string_view head);
  void respond(int status, H2Fields fields, bool with_body);
  void finishExchange();
  void resumeClient();

  H2ClientSide& owner_;
  const int32_t id_;
  LoopClock clock_;
  UpstreamAttempts attempts_;
  RoutedExchange x_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  // The request.
  std::string method_, scheme_ = "http", authority_, path_;
  H2Fields fields_, request_trailers_, forwarded_;
  bool head_done_ = false;
  bool te_trailers_ = false;
  std::string body_;       // the request body from offset base_ on
  uint64_t base_ = 0;      // body bytes dropped (sent on the one try of a big body)
  uint64_t sent_ = 0;      // absolute: sent on the current try
  uint64_t consumed_ = 0;  // absolute: acknowledged to the client
  bool body_complete_ = false;
  bool overflow_ = false;  // more than kMaxRetryBodyBytes: one try only
  bool client_closed_ = false;
  // The current try.
  H2Upstream* up_ = nullptr;
  int32_t up_id_ = -1;
  // The response to the client.
  bool responded_ = false;
  std::string out_;
  H2Fields response_trailers_;
  bool out_end_ = false;
  bool finished_ = false;
};

}  // namespace ferry::agent
