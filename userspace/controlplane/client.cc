// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controlplane/client.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <condition_variable>
#include <iostream>
#include <random>

#include "absl/strings/str_cat.h"
#include "backoff/backoff.h"
#include "controller/distribution/distribution.grpc.pb.h"
#include "controller/distribution/snapshot_delta.h"
#include "tls/spiffe.h"
#include "tls/x509.h"

namespace ferry::controlplane {
namespace {

namespace v1 = ferry::distribution::v1;

// Accepts the controller only if its (chain-verified) certificate names the expected identity.
class ControllerIdentityVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit ControllerIdentityVerifier(std::string identity) : identity_(std::move(identity)) {}
  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    for (const grpc::string_ref& uri : request->uri_names()) {
      if (std::string(uri.data(), uri.size()) == identity_) {
        *sync_status = grpc::Status::OK;
        return true;
      }
    }
    *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                absl::StrCat("controller is not ", identity_));
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  std::string identity_;
};

}  // namespace

struct ControlPlaneClient::Impl {
  ClientConfig config;
  OnUpdate on_update;

  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  grpc::ClientContext* active_watch = nullptr;
  distribution::IndexedSnapshot state;  // last good
  std::optional<model::NodeSnapshot> snapshot;
  std::string epoch;
  std::string roots;  // current trust bundle
  std::string key_pem, cert_pem;
  ClientStats stats;
  std::string last_error;
  std::mt19937_64 rng{std::random_device{}()};

  std::shared_ptr<grpc::Channel> channel(bool with_identity) {
    std::string roots_copy, key_copy, cert_copy;
    {
      std::lock_guard lock(mu);
      roots_copy = roots;
      key_copy = key_pem;
      cert_copy = cert_pem;
    }
    std::shared_ptr<grpc::experimental::StaticDataCertificateProvider> provider;
    if (with_identity) {
      provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
          roots_copy, std::vector<grpc::experimental::IdentityKeyCertPair>{{key_copy, cert_copy}});
    } else {
      provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(roots_copy);
    }
    grpc::experimental::TlsChannelCredentialsOptions options;
    options.set_certificate_provider(provider);
    options.watch_root_certs();
    if (with_identity) {
      options.watch_identity_key_cert_pairs();
    }
    options.set_verify_server_certs(true);
    // The controller is identified by its SPIFFE ID, not a DNS name.
    options.set_check_call_host(false);
    options.set_certificate_verifier(
        grpc::experimental::ExternalCertificateVerifier::Create<ControllerIdentityVerifier>(
            config.controller_identity));
    grpc::ChannelArguments args;
    // A fresh connection per channel: a new identity or bundle must not reuse an old one.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(config.address, grpc::experimental::TlsCredentials(options),
                                     args);
  }

  void setError(const std::string& e) {
    std::lock_guard lock(mu);
    last_error = e;
  }

  absl::Status bootstrap() {
    auto key = tls::generateP256Key();
    if (!key.ok()) {
      return key.status();
    }
    tls::SpiffeId id{config.trust_domain, "ferry.node", config.node};
    auto csr = tls::createCsr(key->get(), id);
    if (!csr.ok()) {
      return csr.status();
    }
    v1::BootstrapRequest req;
    req.set_node(config.node);
    req.set_csr_pem(*tls::csrToPem(csr->get()));
    bool renewing;
    {
      std::lock_guard lock(mu);
      renewing = !cert_pem.empty();
    }
    if (!renewing) {
      if (!config.bootstrap_token) {
        return absl::FailedPreconditionError("no bootstrap token configured");
      }
      auto token = config.bootstrap_token();
      if (!token.ok()) {
        return token.status();
      }
      req.set_token(*token);
    }
    auto stub = v1::Distribution::NewStub(channel(renewing));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + config.rpc_timeout));
    v1::BootstrapResponse resp;
    grpc::Status s = stub->Bootstrap(&ctx, req, &resp);
    if (!s.ok()) {
      return absl::UnavailableError(absl::StrCat("bootstrap: ", s.error_message()));
    }
    std::lock_guard lock(mu);
    key_pem = *tls::keyToPem(key->get());
    cert_pem = resp.cert_chain_pem();
    roots = resp.trust_bundle_pem();
    ++stats.bootstraps;
    return absl::OkStatus();
  }

  bool hasCert() const {
    std::lock_guard lock(mu);
    return !cert_pem.empty();
  }

  bool nodeCertNeedsRenewal() {
    std::lock_guard lock(mu);
    if (cert_pem.empty()) {
      return true;
    }
    auto cert = tls::certFromPem(cert_pem);
    if (!cert.ok()) {
      return true;
    }
    auto info = tls::inspectCert(cert->get());
    return !info.ok() || absl::Now() >= info->not_before + (info->not_after - info->not_before) / 2;
  }

  // Applies one response to the last good state and its materialized snapshot, or leaves both
  // as they were. A full response is decoded outside the lock; a delta decodes only what it
  // carries and is applied in place.
  absl::Status apply(const v1::WatchResponse& resp) {
    if (resp.full()) {
      distribution::IndexedSnapshot next;
      model::NodeSnapshot materialized;
      if (absl::Status s = distribution::applyResponse(resp, next, &materialized); !s.ok()) {
        return s;
      }
      std::lock_guard lock(mu);
      state = std::move(next);
      snapshot = std::move(materialized);
      accepted(resp);
      return absl::OkStatus();
    }
    std::lock_guard lock(mu);
    if (resp.epoch() != epoch || !snapshot) {
      return absl::FailedPreconditionError("delta from another controller epoch");
    }
    if (absl::Status s = distribution::applyResponse(resp, state, &*snapshot); !s.ok()) {
      return s;
    }
    accepted(resp);
    return absl::OkStatus();
  }

  // Bookkeeping after `resp` was applied; `mu` held.
  void accepted(const v1::WatchResponse& resp) {
    epoch = resp.epoch();
    if (!state.trust_bundle_pem.empty()) {
      roots = state.trust_bundle_pem;
    }
    resp.full() ? ++stats.full_snapshots : ++stats.deltas;
  }

  // One Watch stream, until it ends. Returns whether any update was applied.
  bool watchOnce(ControlPlaneClient& owner) {
    auto stub = v1::Distribution::NewStub(channel(true));
    grpc::ClientContext ctx;
    v1::WatchRequest req;
    {
      std::lock_guard lock(mu);
      if (stopping) {
        return false;
      }
      req.set_epoch(epoch);
      req.set_last_version(state.version);
      req.set_pod_index(true);
      req.set_rate_limits(true);
      req.set_request_authentication(true);
      active_watch = &ctx;
    }
    auto reader = stub->Watch(&ctx, req);
    bool applied_any = false;
    v1::WatchResponse resp;
    while (reader->Read(&resp)) {
      owner.connected_ = true;
      absl::Status s = apply(resp);
      if (!s.ok()) {
        // Keep the last good state; ask for a full snapshot on the next stream.
        std::lock_guard lock(mu);
        ++stats.rejected_updates;
        last_error = absl::StrCat("update refused: ", s.message());
        epoch.clear();
        ctx.TryCancel();
        break;
      }
      applied_any = true;
      if (on_update) {
        // Only this thread writes `snapshot`; readers copy it under `mu`.
        on_update(*snapshot);
      }
    }
    grpc::Status status = reader->Finish();
    owner.connected_ = false;
    std::lock_guard lock(mu);
    active_watch = nullptr;
    if (!status.ok() && last_error.rfind("update refused", 0) != 0) {
      last_error = absl::StrCat("watch: ", status.error_message());
    }
    return applied_any;
  }
};

absl::StatusOr<std::unique_ptr<ControlPlaneClient>> ControlPlaneClient::start(ClientConfig config,
                                                                              OnUpdate on_update) {
  if (config.address.empty() || config.node.empty()) {
    return absl::InvalidArgumentError("control plane client: address and node are required");
  }
  if (config.ca_bundle_pem.empty()) {
    return absl::InvalidArgumentError(
        "control plane client: ca_bundle_pem (roots to authenticate the controller) is required");
  }
  std::unique_ptr<ControlPlaneClient> client(new ControlPlaneClient());
  client->impl_ = std::make_unique<Impl>();
  client->impl_->config = std::move(config);
  client->impl_->on_update = std::move(on_update);
  client->impl_->roots = client->impl_->config.ca_bundle_pem;
  client->thread_ = std::thread([c = client.get()] { c->run(); });
  return client;
}

ControlPlaneClient::~ControlPlaneClient() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    if (impl_->active_watch != nullptr) {
      impl_->active_watch->TryCancel();
    }
    impl_->cv.notify_all();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

void ControlPlaneClient::run() {
  Impl& d = *impl_;
  int failures = 0;
  while (true) {
    {
      std::lock_guard lock(d.mu);
      if (d.stopping) {
        return;
      }
      ++d.stats.connects;
    }
    bool progressed = false;
    if (d.nodeCertNeedsRenewal()) {
      absl::Status s = d.bootstrap();
      if (!s.ok()) {
        d.setError(std::string(s.message()));
      }
    }
    if (d.hasCert()) {
      progressed = d.watchOnce(*this);
    }
    failures = progressed ? 0 : failures + 1;
    // After a success the pause is the initial one; each failure in a row doubles it, up to the
    // cap, jittered in [ceiling/2, ceiling].
    absl::Duration pause = backoffDelay(
        {.initial = d.config.initial_backoff, .max = d.config.max_backoff, .jitter = 0.5},
        static_cast<uint32_t>(failures) + 1, d.rng);
    std::unique_lock lock(d.mu);
    d.cv.wait_for(lock, absl::ToChronoMilliseconds(pause), [&] { return d.stopping; });
  }
}

std::optional<model::NodeSnapshot> ControlPlaneClient::snapshot() const {
  std::lock_guard lock(impl_->mu);
  return impl_->snapshot;
}

uint64_t ControlPlaneClient::version() const {
  std::lock_guard lock(impl_->mu);
  return impl_->state.version;
}

ClientStats ControlPlaneClient::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
}

std::string ControlPlaneClient::lastError() const {
  std::lock_guard lock(impl_->mu);
  return impl_->last_error;
}

absl::StatusOr<std::string> ControlPlaneClient::signWorkload(const model::ObjectKey& pod,
                                                             const std::string& csr_pem,
                                                             absl::Duration timeout) {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->cert_pem.empty()) {
      return absl::UnavailableError("no node certificate yet (controller not reached)");
    }
  }
  auto stub = v1::Distribution::NewStub(impl_->channel(true));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::SignWorkloadRequest req;
  req.set_pod_namespace(pod.ns);
  req.set_pod_name(pod.name);
  req.set_csr_pem(csr_pem);
  v1::SignWorkloadResponse resp;
  grpc::Status s = stub->SignWorkload(&ctx, req, &resp);
  if (s.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
    return absl::PermissionDeniedError(s.error_message());
  }
  if (!s.ok()) {
    return absl::UnavailableError(absl::StrCat("SignWorkload: ", s.error_message()));
  }
  return resp.cert_chain_pem();
}

}  // namespace ferry::controlplane
