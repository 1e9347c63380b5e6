// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The agent's gRPC call on its own: status mapping, bad targets and deadlines. Calls against
// the controller's real gRPC server (grpc++) are in test/controller/distribution/server_test.cc.
#include "controlplane/grpc_call.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>

#include "agent/loopback_listener.h"
#include "tls/x509.h"

namespace ferry::controlplane {
namespace {

TEST_CASE("grpc-status codes keep their meaning and message") {
  CHECK(grpcStatus(0, "").ok());
  const absl::Status denied = grpcStatus(7, "pod web-1 is on node2");
  CHECK(denied.code() == absl::StatusCode::kPermissionDenied);
  CHECK(denied.message() == "pod web-1 is on node2");
  CHECK(grpcStatus(14, "x").code() == absl::StatusCode::kUnavailable);
  CHECK(grpcStatus(16, "x").code() == absl::StatusCode::kUnauthenticated);
  // Outside the defined codes: Unknown, with the number kept for the log.
  const absl::Status odd = grpcStatus(99, "what");
  CHECK(odd.code() == absl::StatusCode::kUnknown);
  CHECK(std::string(odd.message()).find("99") != std::string::npos);
}

TEST_CASE("a malformed address is refused before any traffic") {
  GrpcTarget t{.address = "no-port", .roots_pem = "x", .controller_identity = "spiffe://a/b"};
  auto call = GrpcCall::unary(t, "/p.S/M", "", absl::Now() + absl::Seconds(1));
  CHECK(call.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(call.status().message()).find("host:port") != std::string::npos);
}

// A listener that never accepts: the kernel completes the TCP handshake from its backlog,
// then nothing speaks TLS.
struct SilentListener {
  uint16_t port = 0;
  int fd = agent::testing::loopbackListener(&port);
  ~SilentListener() { ::close(fd); }
};

std::string rootPem() {
  auto key = tls::generateP256Key();
  REQUIRE(key.ok());
  auto root = tls::createRootCert(key->get(), "test root", absl::Hours(1), absl::Now());
  REQUIRE(root.ok());
  return *tls::certToPem(root->get());
}

TEST_CASE("a controller that never answers the handshake fails the call at its deadline") {
  SilentListener silent;
  GrpcTarget t{.address = "127.0.0.1:" + std::to_string(silent.port),
               .roots_pem = rootPem(),
               .controller_identity = "spiffe://cluster.local/ns/ferry-system/sa/ferry-controller"};
  auto call = GrpcCall::unary(t, "/p.S/M", "", absl::Now() + absl::Milliseconds(300));
  CHECK(call.status().code() == absl::StatusCode::kDeadlineExceeded);
}

TEST_CASE("roots that do not parse are refused, naming them") {
  SilentListener silent;
  GrpcTarget t{.address = "127.0.0.1:" + std::to_string(silent.port),
               .roots_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
               .controller_identity = "spiffe://cluster.local/ns/ferry-system/sa/ferry-controller"};
  auto call = GrpcCall::unary(t, "/p.S/M", "", absl::Now() + absl::Seconds(5));
  CHECK(call.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(call.status().message()).find("controller roots") != std::string::npos);
}

TEST_CASE("cancel() ends a call stuck in its handshake, from another thread") {
  SilentListener silent;
  GrpcTarget t{.address = "127.0.0.1:" + std::to_string(silent.port),
               .roots_pem = rootPem(),
               .controller_identity = "spiffe://cluster.local/ns/ferry-system/sa/ferry-controller"};
  auto call = GrpcCall::create();
  REQUIRE(call.ok());
  (*call)->cancel();  // before start: start must not even wait for the handshake
  CHECK((*call)->start(t, "/p.S/M", "", absl::Now() + absl::Seconds(60)).code() ==
        absl::StatusCode::kCancelled);
  auto stuck = GrpcCall::create();
  REQUIRE(stuck.ok());
  std::thread canceller([&] { (*stuck)->cancel(); });
  // Whether cancel() lands before or during the handshake, the answer is Cancelled, well
  // before the 60 s deadline (ctest's timeout would fail a hang).
  CHECK((*stuck)->start(t, "/p.S/M", "", absl::Now() + absl::Seconds(60)).code() ==
        absl::StatusCode::kCancelled);
  canceller.join();
}

}  // namespace
}  // namespace ferry::controlplane
