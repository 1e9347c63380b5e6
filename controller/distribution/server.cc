// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/distribution/server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <optional>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "distribution/distribution.grpc.pb.h"
#include "tls/verify.h"
#include "tls/x509.h"

namespace ferry::distribution {
namespace {

grpc::Status toGrpc(const absl::Status& s) {
  if (s.ok()) {
    return grpc::Status::OK;
  }
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (s.code()) {
    case absl::StatusCode::kPermissionDenied:
      code = grpc::StatusCode::PERMISSION_DENIED;
      break;
    case absl::StatusCode::kUnauthenticated:
      code = grpc::StatusCode::UNAUTHENTICATED;
      break;
    case absl::StatusCode::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case absl::StatusCode::kUnavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    default:
      break;
  }
  return grpc::Status(code, std::string(s.message()));
}

std::string randomEpoch() {
  std::random_device rd;
  uint64_t v = (static_cast<uint64_t>(rd()) << 32) | rd();
  return absl::StrCat(absl::Hex(v, absl::kZeroPad16));
}

// What a node holds with a view provider's policy changes applied, or nullopt when they change
// nothing it holds (a change concerning other nodes): most streams, at no copy of their state.
std::optional<IndexedSnapshot> withChanges(const controller::NodeViewChanges& changes,
                                           const IndexedSnapshot& held) {
  std::vector<ResourceKey> gone;
  auto drop = [&](v1::Kind kind, const std::vector<model::ObjectKey>& keys) {
    for (const auto& key : keys) {
      if (held.resources.count({kind, key.str()}) != 0) {
        gone.emplace_back(kind, key.str());
      }
    }
  };
  drop(v1::KIND_AUTHORIZATION_POLICY, changes.gone.policies);
  drop(v1::KIND_PEER_AUTHENTICATION, changes.gone.peer_authentications);
  drop(v1::KIND_RATE_LIMIT_POLICY, changes.gone.rate_limits);
  drop(v1::KIND_REQUEST_AUTHENTICATION, changes.gone.request_authentications);
  std::map<ResourceKey, std::string> upserts = indexSnapshot(changes.upserts).resources;
  std::erase_if(upserts, [&](const auto& item) {
    auto it = held.resources.find(item.first);
    return it != held.resources.end() && it->second == item.second;
  });
  if (gone.empty() && upserts.empty()) {
    return std::nullopt;
  }
  IndexedSnapshot out = held;
  for (const ResourceKey& id : gone) {
    out.resources.erase(id);
  }
  for (auto& [id, json] : upserts) {
    out.resources[id] = std::move(json);
  }
  return out;
}

}  // namespace

std::string controllerIdentity(const std::string& trust_domain, const ServerConfig& config) {
  return tls::SpiffeId{trust_domain, config.controller_namespace, config.controller_service_account}
      .uri();
}

// Wakes Watch streams. Shared with the view's subscription, which cannot be withdrawn, so a
// change notified after the service is gone finds nothing to wake instead of a dangling pointer.
struct WakeSignal {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t generation = 0;
  uint64_t drops = 0;  // bumped to end every open stream
  bool stopping = false;
  void wake() {
    std::lock_guard lock(mu);
    ++generation;
    cv.notify_all();
  }
};

class DistributionService final : public v1::Distribution::Service {
 public:
  DistributionService(const ServerConfig& config, ca::CertificateAuthority& ca,
                      controller::NodeViewProvider& view, BootstrapAuthenticator& bootstrap)
      : config_(config),
        ca_(ca),
        view_(view),
        bootstrap_(bootstrap),
        authz_(ca, view),
        epoch_(randomEpoch()),
        version_(config.first_version) {
    std::weak_ptr<WakeSignal> weak = signal_;
    view_.subscribe([weak](uint64_t) {
      if (auto s = weak.lock()) {
        s->wake();
      }
    });
  }

  void wake() { signal_->wake(); }

  void dropStreams() {
    std::lock_guard lock(signal_->mu);
    ++signal_->drops;
    signal_->cv.notify_all();
  }

  void stop() {
    std::lock_guard lock(signal_->mu);
    signal_->stopping = true;
    signal_->cv.notify_all();
  }

  // The node named by the caller's verified node certificate, or an error.
  absl::StatusOr<std::string> peerNode(grpc::ServerContext* ctx) {
    std::shared_ptr<const grpc::AuthContext> auth = ctx->auth_context();
    std::vector<grpc::string_ref> pem = auth->FindPropertyValues("x509_pem_cert");
    if (pem.empty()) {
      return absl::UnauthenticatedError("no client certificate: this call needs mTLS");
    }
    auto leaf = tls::certFromPem(std::string(pem[0].data(), pem[0].size()));
    if (!leaf.ok()) {
      return absl::UnauthenticatedError(
          absl::StrCat("client certificate: ", leaf.status().message()));
    }
    const absl::Time now = absl::Now();
    auto bundle = tls::TrustBundle::fromPem(ca_.trustBundlePem(now));
    if (!bundle.ok()) {
      return bundle.status();
    }
    auto id = tls::verifySvid(**bundle, leaf->get(), nullptr, ca_.config().trust_domain, now);
    if (!id.ok()) {
      return absl::UnauthenticatedError(
          absl::StrCat("client certificate: ", id.status().message()));
    }
    return ca::nodeFromIdentity(*id);
  }

  grpc::Status Bootstrap(grpc::ServerContext* ctx, const v1::BootstrapRequest* req,
                         v1::BootstrapResponse* resp) override {
    if (req->node().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "node is required");
    }
    auto renewing = peerNode(ctx);
    if (renewing.ok()) {
      if (*renewing != req->node()) {
        return grpc::Status(
            grpc::StatusCode::PERMISSION_DENIED,
            absl::StrCat("node '", *renewing, "' may not renew for '", req->node(), "'"));
      }
    } else if (absl::Status s = bootstrap_.authenticate(req->token(), req->node()); !s.ok()) {
      return toGrpc(s);
    }
    const absl::Time now = absl::Now();
    auto cert = ca_.sign(req->csr_pem(), ca::nodeIdentity(ca_.config().trust_domain, req->node()),
                         now, config_.node_cert_lifetime);
    if (!cert.ok()) {
      return toGrpc(cert.status());
    }
    resp->set_cert_chain_pem(*cert);
    resp->set_trust_bundle_pem(ca_.trustBundlePem(now));
    return grpc::Status::OK;
  }

  grpc::Status SignWorkload(grpc::ServerContext* ctx, const v1::SignWorkloadRequest* req,
                            v1::SignWorkloadResponse* resp) override {
    auto node = peerNode(ctx);
    if (!node.ok()) {
      return toGrpc(node.status());
    }
    auto signed_cert = authz_.signForPod(*node, {req->pod_namespace(), req->pod_name()},
                                         req->csr_pem(), absl::Now());
    if (!signed_cert.ok()) {
      return toGrpc(signed_cert.status());
    }
    resp->set_cert_chain_pem(signed_cert->cert_pem);
    resp->set_trust_bundle_pem(signed_cert->trust_bundle_pem);
    return grpc::Status::OK;
  }

  // The node's whole view, rebuilt; `view_version` gets the view provider's version of it.
  IndexedSnapshot current(const std::string& node, const v1::WatchRequest& req,
                          uint64_t& view_version) {
    model::NodeSnapshot snap = view_.snapshotFor(node);
    view_version = snap.version;
    if (!req.pod_index()) {
      snap.pod_index.clear();
    }
    if (!req.rate_limits()) {
      snap.rate_limits.clear();
    }
    if (!req.request_authentication()) {
      snap.request_authentications.clear();
    }
    snap.node = node;
    snap.trust_domain = ca_.config().trust_domain;
    snap.trust_bundle_pem = ca_.trustBundlePem(absl::Now());
    return indexSnapshot(snap);
  }

  // `sent` brought up to date with only what changed since `view_version` when the view
  // provider can tell (policy changes; nullopt when nothing `sent` holds changed); otherwise the
  // whole view, rebuilt.
  std::optional<IndexedSnapshot> updated(const std::string& node, const v1::WatchRequest& req,
                                         const IndexedSnapshot& sent, uint64_t& view_version) {
    controller::NodeViewChanges changes = view_.changesSince(node, view_version);
    if (changes.rebuild || ca_.trustBundlePem(absl::Now()) != sent.trust_bundle_pem) {
      return current(node, req, view_version);
    }
    if (!req.rate_limits()) {
      changes.upserts.rate_limits.clear();
    }
    if (!req.request_authentication()) {
      changes.upserts.request_authentications.clear();
    }
    view_version = changes.version;
    return withChanges(changes, sent);
  }

  static bool sameContent(const IndexedSnapshot& a, const IndexedSnapshot& b) {
    return a.resources == b.resources && a.trust_bundle_pem == b.trust_bundle_pem &&
           a.trust_domain == b.trust_domain;
  }

  grpc::Status Watch(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                     grpc::ServerWriter<v1::WatchResponse>* writer) override {
    auto node = peerNode(ctx);
    if (!node.ok()) {
      return toGrpc(node.status());
    }
    uint64_t seen_generation, seen_drops;
    {
      std::lock_guard lock(signal_->mu);
      seen_generation = signal_->generation;
      seen_drops = signal_->drops;
    }
    uint64_t view_version = 0;
    IndexedSnapshot sent = current(*node, *req, view_version);
    v1::WatchResponse first;
    {
      std::lock_guard lock(mu_);
      auto it = last_sent_.find(*node);
      bool can_resume = req->epoch() == epoch_ && req->last_version() != 0 &&
                        it != last_sent_.end() && it->second.version == req->last_version();
      if (can_resume && sameContent(it->second, sent)) {
        sent.version = it->second.version;
      } else {
        sent.version = ++version_;
      }
      if (can_resume) {
        first = deltaResponse(it->second, sent, epoch_);
        ++resumes_;
        ++deltas_;
      } else {
        first = fullResponse(sent, epoch_);
        ++fulls_;
      }
      last_sent_[*node] = sent;
    }
    if (!writer->Write(first)) {
      return grpc::Status::OK;
    }
    while (true) {
      {
        WakeSignal& sig = *signal_;
        std::unique_lock lock(sig.mu);
        sig.cv.wait_for(lock, absl::ToChronoMilliseconds(config_.idle_poll), [&] {
          return sig.stopping || sig.generation != seen_generation || sig.drops != seen_drops;
        });
        if (sig.stopping || sig.drops != seen_drops) {
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller asks to reconnect");
        }
        if (ctx->IsCancelled()) {
          return grpc::Status::CANCELLED;
        }
        if (sig.generation == seen_generation) {
          continue;
        }
        seen_generation = sig.generation;
      }
      std::optional<IndexedSnapshot> changed = updated(*node, *req, sent, view_version);
      if (!changed || sameContent(*changed, sent)) {
        continue;
      }
      IndexedSnapshot next = *std::move(changed);
      v1::WatchResponse delta;
      {
        std::lock_guard lock(mu_);
        next.version = ++version_;
        delta = deltaResponse(sent, next, epoch_);
        last_sent_[*node] = next;
        ++deltas_;
      }
      if (!writer->Write(delta)) {
        return grpc::Status::OK;
      }
      sent = std::move(next);
    }
  }

  const std::string& epoch() const { return epoch_; }
  uint64_t fulls() const { return fulls_.load(); }
  uint64_t deltas() const { return deltas_.load(); }
  uint64_t resumes() const { return resumes_.load(); }

 private:
  const ServerConfig config_;
  ca::CertificateAuthority& ca_;
  controller::NodeViewProvider& view_;
  BootstrapAuthenticator& bootstrap_;
  ca::WorkloadCsrAuthorizer authz_;
  const std::string epoch_;

  std::shared_ptr<WakeSignal> signal_ = std::make_shared<WakeSignal>();
  std::mutex mu_;  // version_, last_sent_
  uint64_t version_ = 0;
  // What each node was last sent, for resuming with a delta after a reconnect.
  std::map<std::string, IndexedSnapshot> last_sent_;
  std::atomic<uint64_t> fulls_{0}, deltas_{0}, resumes_{0};
};

absl::StatusOr<std::unique_ptr<DistributionServer>> DistributionServer::start(
    const ServerConfig& config, ca::CertificateAuthority& ca, controller::NodeViewProvider& view,
    BootstrapAuthenticator& bootstrap) {
  // The controller's serving identity, signed by the mesh CA, key in memory only.
  auto key = tls::generateP256Key();
  if (!key.ok()) {
    return key.status();
  }
  auto id = tls::SpiffeId::parse(controllerIdentity(ca.config().trust_domain, config));
  if (!id.ok()) {
    return id.status();
  }
  auto csr = tls::createCsr(key->get(), *id);
  if (!csr.ok()) {
    return csr.status();
  }
  auto csr_pem = tls::csrToPem(csr->get());
  auto key_pem = tls::keyToPem(key->get());
  if (!csr_pem.ok() || !key_pem.ok()) {
    return absl::InternalError("cannot encode the controller's key or CSR");
  }
  // Same lifetime as the overlap: the serving certificate stays verifiable across a rotation.
  auto cert = ca.sign(*csr_pem, *id, absl::Now(), ca.config().rotation_overlap);
  if (!cert.ok()) {
    return cert.status();
  }
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      std::vector<grpc::experimental::IdentityKeyCertPair>{{*key_pem, *cert}});
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);

  std::unique_ptr<DistributionServer> server(new DistributionServer());
  server->service_ = std::make_unique<DistributionService>(config, ca, view, bootstrap);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen_address, grpc::experimental::TlsServerCredentials(options),
                           &server->port_);
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("distribution: cannot listen on ", config.listen_address));
  }
  return server;
}

DistributionServer::~DistributionServer() {
  shutdown();
}

void DistributionServer::shutdown() {
  if (service_) {
    service_->stop();
  }
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
    server_.reset();
  }
}

const std::string& DistributionServer::epoch() const {
  return service_->epoch();
}
void DistributionServer::trustBundleChanged() {
  service_->wake();
}
void DistributionServer::dropStreams() {
  service_->dropStreams();
}
uint64_t DistributionServer::fullSnapshotsSent() const {
  return service_->fulls();
}
uint64_t DistributionServer::deltasSent() const {
  return service_->deltas();
}
uint64_t DistributionServer::resumes() const {
  return service_->resumes();
}

}  // namespace ferry::distribution
