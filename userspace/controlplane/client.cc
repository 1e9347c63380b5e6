// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controlplane/client.h"

#include <condition_variable>
#include <random>

#include "absl/strings/str_cat.h"
#include "backoff/backoff.h"
#include "controlplane/grpc_call.h"
#include "distribution/distribution.pb.h"
#include "distribution/snapshot_delta.h"
#include "tls/spiffe.h"
#include "tls/x509.h"

namespace ferry::controlplane {
namespace {

namespace v1 = ferry::distribution::v1;

constexpr char kBootstrap[] = "/ferry.distribution.v1.Distribution/Bootstrap";
constexpr char kWatch[] = "/ferry.distribution.v1.Distribution/Watch";
constexpr char kSignWorkload[] = "/ferry.distribution.v1.Distribution/SignWorkload";

}  // namespace

struct ControlPlaneClient::Impl {
  ClientConfig config;
  OnUpdate on_update;

  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  // The run thread's call in progress (Bootstrap or Watch), for the destructor to cancel.
  GrpcCall* active_call = nullptr;
  distribution::IndexedSnapshot state;  // last good
  std::optional<model::NodeSnapshot> snapshot;
  std::string epoch;
  std::string roots;  // current trust bundle
  std::string key_pem, cert_pem;
  ClientStats stats;
  std::string last_error;
  std::mt19937_64 rng{std::random_device{}()};

  // Where and how to reach the controller now: the current roots, and the node certificate
  // when `with_identity` (a fresh connection per call, so a new identity or bundle is used at
  // once).
  GrpcTarget target(bool with_identity) {
    std::lock_guard lock(mu);
    GrpcTarget t{.address = config.address,
                 .roots_pem = roots,
                 .controller_identity = config.controller_identity};
    if (with_identity) {
      t.key_pem = key_pem;
      t.cert_pem = cert_pem;
    }
    return t;
  }

  // A new call the destructor can cancel from the moment it exists; Cancelled when stopping.
  absl::StatusOr<std::unique_ptr<GrpcCall>> publishedCall() {
    auto call = GrpcCall::create();
    if (!call.ok()) {
      return call.status();
    }
    std::lock_guard lock(mu);
    if (stopping) {
      return absl::CancelledError("control plane client stopping");
    }
    active_call = call->get();
    return call;
  }

  void unpublish() {
    std::lock_guard lock(mu);
    active_call = nullptr;
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
    const absl::Time deadline = absl::Now() + config.rpc_timeout;
    auto call = publishedCall();
    if (!call.ok()) {
      return call.status();
    }
    absl::Status started =
        (*call)->start(target(renewing), kBootstrap, req.SerializeAsString(), deadline);
    absl::StatusOr<std::string> answer =
        started.ok() ? (*call)->unaryAnswer(kBootstrap, deadline) : started;
    unpublish();
    v1::BootstrapResponse resp;
    if (!answer.ok()) {
      return absl::UnavailableError(absl::StrCat("bootstrap: ", answer.status().message()));
    }
    if (!resp.ParseFromString(*answer)) {
      return absl::UnavailableError("bootstrap: the controller's answer does not parse");
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
    }
    auto call = publishedCall();
    if (!call.ok()) {
      return false;
    }
    if (absl::Status s = (*call)->start(target(true), kWatch, req.SerializeAsString(),
                                        absl::Now() + config.rpc_timeout);
        !s.ok()) {
      unpublish();
      setError(absl::StrCat("watch: ", s.message()));
      return false;
    }
    bool applied_any = false;
    bool refused = false;
    v1::WatchResponse resp;
    while (std::optional<std::string> message = (*call)->next()) {
      owner.connected_ = true;
      absl::Status s = resp.ParseFromString(*message)
                           ? apply(resp)
                           : absl::InvalidArgumentError("a WatchResponse that does not parse");
      if (!s.ok()) {
        // Keep the last good state; ask for a full snapshot on the next stream.
        std::lock_guard lock(mu);
        ++stats.rejected_updates;
        last_error = absl::StrCat("update refused: ", s.message());
        epoch.clear();
        refused = true;
        (*call)->cancel();
        break;
      }
      applied_any = true;
      if (on_update) {
        // Only this thread writes `snapshot`; readers copy it under `mu`.
        on_update(*snapshot);
      }
    }
    owner.connected_ = false;
    std::lock_guard lock(mu);
    active_call = nullptr;
    if (!refused && !(*call)->status().ok()) {
      last_error = absl::StrCat("watch: ", (*call)->status().message());
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
    if (impl_->active_call != nullptr) {
      impl_->active_call->cancel();
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
  v1::SignWorkloadRequest req;
  req.set_pod_namespace(pod.ns);
  req.set_pod_name(pod.name);
  req.set_csr_pem(csr_pem);
  auto answer = GrpcCall::unary(impl_->target(true), kSignWorkload, req.SerializeAsString(),
                                absl::Now() + timeout);
  if (answer.status().code() == absl::StatusCode::kPermissionDenied) {
    return answer.status();
  }
  if (!answer.ok()) {
    return absl::UnavailableError(absl::StrCat("SignWorkload: ", answer.status().message()));
  }
  v1::SignWorkloadResponse resp;
  if (!resp.ParseFromString(*answer)) {
    return absl::UnavailableError("SignWorkload: the controller's answer does not parse");
  }
  return resp.cert_chain_pem();
}

}  // namespace ferry::controlplane
