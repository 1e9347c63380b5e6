// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// One gRPC call to ferry-controller over its own TLS 1.3 + HTTP/2 connection, written on
// libnghttp2 and OpenSSL, which the agent links anyway for HBONE. The agent makes three kinds
// of call (Bootstrap and SignWorkload, unary; Watch, server-streaming), one at a time per
// connection; the gRPC runtime added ~6.5 MiB to an idle agent's RSS for that (issue 19 point
// 4, bench/README.md), so the agent speaks the protocol itself: a POST with
// `content-type: application/grpc` and `te: trailers`, length-prefixed messages, and the
// status in `grpc-status`/`grpc-message` (trailers, or the headers of a trailers-only answer).
//
// The controller is authenticated by its chain to `roots_pem` and by its URI SAN, which must
// be `controller_identity` (it is not named by DNS). A client certificate is presented when
// one is given (every call after Bootstrap).
//
//   GrpcTarget t{.address = "ctrl:15012", .roots_pem = roots, .controller_identity = id};
//   auto call = GrpcCall::create();                // publish it, so cancel() can reach it
//   (*call)->start(t, "/ferry.distribution.v1.Distribution/Watch", bytes, deadline);
//   while (auto m = (*call)->next()) { ... }   // m: the next message, or nullopt at the end
//   (*call)->status();                          // how it ended
//   (*call)->cancel();                          // from another thread, at any time
//
// A peer that goes silent is found by TCP keepalive and TCP_USER_TIMEOUT (about a minute), so a
// Watch never waits forever on a dead controller. Writes never raise SIGPIPE.

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tls/ossl.h"

namespace ferry::controlplane {

struct GrpcTarget {
  std::string address;  // host:port
  std::string roots_pem;
  std::string controller_identity;
  std::string key_pem, cert_pem;  // both empty: no client certificate
};

// gRPC status codes (grpc/status.h) mapped onto absl's, which share their numbering.
absl::Status grpcStatus(int code, const std::string& message);

class GrpcCall {
 public:
  // Largest message accepted (a full snapshot of a large cluster fits with room).
  static constexpr size_t kMaxMessageBytes = 64u << 20;

  // A call not yet started; fails only when the process is out of descriptors.
  static absl::StatusOr<std::unique_ptr<GrpcCall>> create();
  // Connects, authenticates the controller and sends the one request message. `deadline`
  // bounds the connection and handshake. Once only.
  absl::Status start(const GrpcTarget& target, const std::string& method_path,
                     const std::string& request, absl::Time deadline);
  // After start(): the one answer of a unary call, its trailers read, or the call's status.
  absl::StatusOr<std::string> unaryAnswer(const std::string& method_path, absl::Time deadline);
  // create(), start() and unaryAnswer() in one, for a call nobody needs to cancel.
  static absl::StatusOr<std::string> unary(const GrpcTarget& target, const std::string& method_path,
                                           const std::string& request, absl::Time deadline);
  ~GrpcCall();
  GrpcCall(const GrpcCall&) = delete;
  GrpcCall& operator=(const GrpcCall&) = delete;

  // The next message, waiting until `deadline`; nullopt once the call has ended (status()
  // says how; a passed deadline ends it with DeadlineExceeded).
  std::optional<std::string> next(absl::Time deadline = absl::InfiniteFuture());
  // How the call ended; meaningful once next() returned nullopt.
  absl::Status status() const { return status_; }
  // Thread-safe, at any time before the call is destroyed: a start() or next() in progress or
  // to come returns soon with Cancelled.
  void cancel();

  struct Session;  // the nghttp2 side, in the .cc

 private:
  GrpcCall() = default;
  absl::Status handshake(const GrpcTarget& target, absl::Time deadline);
  absl::Status submit(const GrpcTarget& target, const std::string& method_path,
                      const std::string& request);
  // Moves bytes both ways once: sends what nghttp2 has, then reads one TLS record's worth.
  absl::Status pump(absl::Time deadline);
  void finish(absl::Status status);

  absl::Status connectTo(const std::string& address, absl::Time deadline);
  // Waits until the socket is ready for `events` (POLLIN/POLLOUT), the deadline passes or the
  // call is cancelled.
  absl::Status waitFor(short events, absl::Time deadline);
  // SSL_write_ex of all of `data`, with SIGPIPE held back on this thread.
  absl::Status writeAll(const uint8_t* data, size_t size, absl::Time deadline);

  int fd_ = -1;
  int cancel_fd_ = -1;  // an eventfd: cancel() wakes waitFor() without touching fd_
  std::atomic<bool> cancelled_{false};
  tls::UniqueSslCtx ctx_;
  tls::UniqueSsl ssl_;
  std::unique_ptr<Session> session_;
  bool ended_ = false;
  absl::Status status_;
};

}  // namespace ferry::controlplane
