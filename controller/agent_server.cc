// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/agent_server.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "controller/ha/ca_secret.h"
#include "kube/client.h"
#include "log/log.h"
#include "tls/x509.h"

namespace ferry::controller {
namespace {

absl::StatusOr<std::unique_ptr<ca::CertificateAuthority>> makeAuthority(
    const ControllerConfig& config, const kube::Client* kube) {
  ca::CaConfig ca_config;
  ca_config.trust_domain = config.trust_domain;
  ca_config.workload_cert_lifetime = absl::Hours(config.cert_lifetime_hours);
  ca_config.rotation_overlap = absl::Hours(config.rotation_overlap_hours);
  if (auto s = ca_config.validate(); !s.ok()) {
    return s;
  }
  if (!config.ca_secret.empty()) {
    if (kube == nullptr) {
      return absl::InvalidArgumentError("--ca-secret needs the Kubernetes API");
    }
    return caFromSecret(*kube, config.ownNamespace(), config.ca_secret, config.ca_secret_generate,
                        ca_config, absl::Now());
  }
  if (config.ca_cert_file.empty()) {
    auto made = ca::CertificateAuthority::loadOrCreate(config.ca_dir, ca_config, absl::Now());
    if (!made.ok()) {
      return absl::Status(made.status().code(),
                          absl::StrCat("--ca-dir ", config.ca_dir, ": ", made.status().message()));
    }
    return made;
  }
  auto cert = tls::readPemFile(config.ca_cert_file);
  if (!cert.ok()) {
    return absl::Status(cert.status().code(), absl::StrCat("--ca-cert ", config.ca_cert_file, ": ",
                                                           cert.status().message()));
  }
  auto key = tls::readPemFile(config.ca_key_file);
  if (!key.ok()) {
    return absl::Status(key.status().code(), absl::StrCat("--ca-key ", config.ca_key_file, ": ",
                                                          key.status().message()));
  }
  auto made = ca::CertificateAuthority::fromPem(*cert, *key, ca_config, absl::Now());
  if (!made.ok()) {
    return absl::Status(made.status().code(),
                        absl::StrCat("--ca-cert/--ca-key: ", made.status().message()));
  }
  return made;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AgentServer>> AgentServer::start(const ControllerConfig& config,
                                                                NodeViewProvider& view,
                                                                const kube::Client* kube) {
  std::unique_ptr<AgentServer> out(new AgentServer());
  out->config_ = config;
  out->kube_ = kube;
  auto authority = makeAuthority(config, kube);
  if (!authority.ok()) {
    return authority.status();
  }
  out->ca_ = *std::move(authority);

  if (!config.bootstrap_token_file.empty()) {
    auto tokens = distribution::BootstrapTokenFile::load(config.bootstrap_token_file);
    if (!tokens.ok()) {
      return absl::Status(tokens.status().code(),
                          absl::StrCat("--bootstrap-token-file: ", tokens.status().message()));
    }
    out->bootstrap_ = *std::move(tokens);
  } else if (kube != nullptr) {
    static const kube::Resource kTokenReviews{"authentication.k8s.io", "v1", "tokenreviews",
                                              "TokenReview", false};
    out->reviewer_ = std::make_unique<distribution::HttpTokenReviewer>(
        [kube](const std::string&, const std::string& body) -> absl::StatusOr<std::string> {
          auto parsed = nlohmann::json::parse(body, nullptr, false);
          auto reply = kube->create(kTokenReviews, parsed);
          if (!reply.ok()) {
            return reply.status();
          }
          return reply->dump();
        });
    out->bootstrap_ = std::make_unique<distribution::ServiceAccountTokenAuthenticator>(
        *out->reviewer_, config.root_namespace, config.agent_service_account,
        config.token_audience);
  } else {
    return absl::InvalidArgumentError(
        "standalone mode needs --bootstrap-token-file (lines \"<token> [node]\")");
  }

  distribution::ServerConfig server_config;
  server_config.listen_address = config.listen;
  server_config.controller_namespace = config.root_namespace;
  server_config.first_version = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
  auto server =
      distribution::DistributionServer::start(server_config, *out->ca_, view, *out->bootstrap_);
  if (!server.ok()) {
    return absl::Status(server.status().code(),
                        absl::StrCat("--listen ", config.listen, ": ", server.status().message()));
  }
  out->server_ = *std::move(server);
  out->last_bundle_ = out->ca_->trustBundlePem(absl::Now());
  if (auto s = out->writeTrustBundle(out->last_bundle_); !s.ok()) {
    return s;
  }
  return out;
}

AgentServer::~AgentServer() {
  if (server_) {
    server_->shutdown();
  }
}

absl::Status AgentServer::writeTrustBundle(const std::string& pem) const {
  if (config_.trust_bundle_file.empty()) {
    return absl::OkStatus();
  }
  if (auto s = tls::writePemFile(config_.trust_bundle_file, pem); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("--trust-bundle-file ", config_.trust_bundle_file,
                                               ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::Status AgentServer::rotateRoot() {
  const absl::Time now = absl::Now();
  absl::Status s;
  if (!config_.ca_secret.empty()) {
    s = syncRootFromSecret(now);
  } else if (config_.ca_cert_file.empty()) {
    s = ca_->rotate(now);
  } else {
    auto cert = tls::readPemFile(config_.ca_cert_file);
    auto key = tls::readPemFile(config_.ca_key_file);
    if (!cert.ok() || !key.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("rotation: cannot read --ca-cert/--ca-key: ",
                       (cert.ok() ? key.status() : cert.status()).message()));
    }
    s = ca_->rotateTo(*cert, *key, now);
  }
  if (!s.ok()) {
    return s;
  }
  refreshTrustBundle();
  return absl::OkStatus();
}

absl::Status AgentServer::syncRootFromSecret(absl::Time now) {
  // Every replica reads the same Secret, so they all move to the operator's new root; nothing
  // is generated here (two replicas would generate two different roots).
  auto secret = kube_->get(kube::kSecrets, config_.ownNamespace(), config_.ca_secret);
  if (!secret.ok()) {
    return absl::UnavailableError(absl::StrCat("rotation: cannot read Secret ", config_.ca_secret,
                                               ": ", secret.status().message()));
  }
  auto root = rootPemFromSecret(*secret, config_.ownNamespace(), config_.ca_secret);
  if (!root.ok()) {
    return root.status();
  }
  if (root->cert_pem == ca_->activeRootPem()) {
    return absl::OkStatus();
  }
  return ca_->rotateTo(root->cert_pem, root->key_pem, now);
}

void AgentServer::refreshTrustBundle() {
  std::string bundle = ca_->trustBundlePem(absl::Now());
  {
    std::lock_guard lock(mu_);
    if (bundle == last_bundle_) {
      return;
    }
    last_bundle_ = bundle;
  }
  if (auto s = writeTrustBundle(bundle); !s.ok()) {
    LOG_ERROR(s.message());
  }
  server_->trustBundleChanged();
}

}  // namespace ferry::controller
