// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The agent's own gRPC call against a grpc++ server (the runtime the controller uses): messages
// across the HTTP/2 windows (64 KiB default, 16 MiB the call's own), several messages on one
// stream, error statuses in trailers-only answers, and cancel() during a Watch that sends
// nothing.
#include <grpc/grpc.h>
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "controlplane/grpc_call.h"
#include "distribution/distribution.grpc.pb.h"
#include "tls/x509.h"

namespace ferry::controlplane {
namespace {

namespace v1 = ferry::distribution::v1;

// gRPC shuts its runtime down when the last server goes away, and grpc 1.51's shutdown can wait
// ~10 s for an executor thread parked in epoll_wait: held once for the whole binary, each
// server's destruction stays quick.
const bool kGrpcHeld = [] {
  grpc_init();
  return true;
}();

constexpr char kIdentity[] = "spiffe://cluster.local/ns/ferry-system/sa/ferry-controller";
const std::vector<size_t> kSizes = {1, 65535, 65536 + 5, 5u << 20, (16u << 20) + 1};

// Answers with messages of kSizes; a Watch whose last_version is 7 sends nothing and waits.
class TestService final : public v1::Distribution::Service {
 public:
  grpc::Status Bootstrap(grpc::ServerContext*, const v1::BootstrapRequest*,
                         v1::BootstrapResponse*) override {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "token is for node9");
  }
  grpc::Status SignWorkload(grpc::ServerContext*, const v1::SignWorkloadRequest* req,
                            v1::SignWorkloadResponse* resp) override {
    resp->set_cert_chain_pem(std::string(std::stoul(req->pod_name()), 'c'));
    return grpc::Status::OK;
  }
  grpc::Status Watch(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                     grpc::ServerWriter<v1::WatchResponse>* writer) override {
    if (req->last_version() == 7) {
      std::unique_lock lock(mu_);
      waiting_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return ctx->IsCancelled() || stop_; });
      return grpc::Status::CANCELLED;
    }
    for (size_t size : kSizes) {
      v1::WatchResponse r;
      r.set_epoch(std::string(size, 'e'));
      writer->Write(r);
    }
    return grpc::Status::OK;
  }
  void awaitWaiting() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return waiting_; });
  }
  void stop() {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool waiting_ = false;
  bool stop_ = false;
};

struct Server {
  TestService service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string roots;

  Server() {
    auto ca_key = tls::generateP256Key();
    REQUIRE(ca_key.ok());
    auto ca = tls::createRootCert(ca_key->get(), "interop root", absl::Hours(1), absl::Now());
    REQUIRE(ca.ok());
    auto key = tls::generateP256Key();
    REQUIRE(key.ok());
    auto id = tls::SpiffeId::parse(kIdentity);
    REQUIRE(id.ok());
    auto csr = tls::createCsr(key->get(), *id);
    REQUIRE(csr.ok());
    auto leaf =
        tls::signCsr(ca->get(), ca_key->get(), csr->get(), *id, absl::Hours(1), absl::Now());
    REQUIRE(leaf.ok());
    roots = *tls::certToPem(ca->get());
    grpc::SslServerCredentialsOptions tls_options;
    tls_options.pem_key_cert_pairs.push_back(
        {*tls::keyToPem(key->get()), *tls::certToPem(leaf->get())});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(tls_options), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    REQUIRE(server != nullptr);
  }
  ~Server() {
    service.stop();
    server->Shutdown();
  }
  GrpcTarget target() const {
    return {.address = "127.0.0.1:" + std::to_string(port),
            .roots_pem = roots,
            .controller_identity = kIdentity};
  }
};

TEST_CASE("unary answers of every size across the HTTP/2 windows arrive whole") {
  Server s;
  for (size_t size : kSizes) {
    INFO("size " << size);
    v1::SignWorkloadRequest req;
    req.set_pod_name(std::to_string(size));
    auto answer = GrpcCall::unary(s.target(), "/ferry.distribution.v1.Distribution/SignWorkload",
                                  req.SerializeAsString(), absl::Now() + absl::Seconds(30));
    REQUIRE(answer.ok());
    v1::SignWorkloadResponse resp;
    REQUIRE(resp.ParseFromString(*answer));
    CHECK(resp.cert_chain_pem() == std::string(size, 'c'));
  }
}

TEST_CASE("a server stream delivers every message in order, then its OK status") {
  Server s;
  auto call = GrpcCall::create();
  REQUIRE(call.ok());
  REQUIRE((*call)
              ->start(s.target(), "/ferry.distribution.v1.Distribution/Watch",
                      v1::WatchRequest().SerializeAsString(), absl::Now() + absl::Seconds(30))
              .ok());
  size_t i = 0;
  while (std::optional<std::string> m = (*call)->next(absl::Now() + absl::Seconds(30))) {
    v1::WatchResponse r;
    REQUIRE(r.ParseFromString(*m));
    REQUIRE(i < kSizes.size());
    CHECK(r.epoch() == std::string(kSizes[i], 'e'));
    ++i;
  }
  CHECK(i == kSizes.size());
  CHECK((*call)->status().ok());
}

TEST_CASE("an error status keeps its code and message (trailers-only answer)") {
  Server s;
  auto answer =
      GrpcCall::unary(s.target(), "/ferry.distribution.v1.Distribution/Bootstrap",
                      v1::BootstrapRequest().SerializeAsString(), absl::Now() + absl::Seconds(30));
  CHECK(answer.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(answer.status().message() == "token is for node9");
  // Another identity than the server's certificate names: refused before the request is sent.
  GrpcTarget other = s.target();
  other.controller_identity = "spiffe://cluster.local/ns/ferry-system/sa/impostor";
  auto refused =
      GrpcCall::unary(other, "/ferry.distribution.v1.Distribution/Bootstrap",
                      v1::BootstrapRequest().SerializeAsString(), absl::Now() + absl::Seconds(30));
  CHECK(refused.status().code() == absl::StatusCode::kUnauthenticated);
}

TEST_CASE("cancel() ends a Watch that receives nothing, from another thread") {
  Server s;
  auto call = GrpcCall::create();
  REQUIRE(call.ok());
  v1::WatchRequest req;
  req.set_last_version(7);
  REQUIRE((*call)
              ->start(s.target(), "/ferry.distribution.v1.Distribution/Watch",
                      req.SerializeAsString(), absl::Now() + absl::Seconds(30))
              .ok());
  std::thread canceller([&] {
    s.service.awaitWaiting();  // the server holds the stream open, sending nothing
    (*call)->cancel();
  });
  // No deadline: only cancel() can end this.
  CHECK_FALSE((*call)->next().has_value());
  canceller.join();
  CHECK((*call)->status().code() == absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace ferry::controlplane
