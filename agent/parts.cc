// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/parts.h"

#include "agent/identity/certificates.h"
#include "agent/identity/workload_certs.h"
#include "agent/pods/bpf_capture.h"
#include "agent/state/controlplane_state.h"
#include "agent/state/manifest_state.h"
#include "log/log.h"

namespace ferry::agent {

namespace {

// State and certificates from ferry-controller, sharing one link.
absl::Status controllerParts(const Config& config, std::function<void()> after_certificates,
                             AgentParts& parts) {
  auto client = controllerClientConfig(config.controller, config.node_name, config.trust_domain,
                                       config.bootstrap_token_file, config.controller_ca);
  if (!client.ok()) {
    return client.status();
  }
  auto link = std::make_shared<ControllerLink>(*std::move(client));
  static const controlplane::SystemClock kClock;
  auto certs = std::make_unique<ControllerCertificateStore>(link, kClock);
  certs->startRefreshing(absl::Seconds(1), std::move(after_certificates));
  parts.certs = std::move(certs);
  parts.state = std::make_unique<ControllerStateSource>(link, absl::Seconds(30));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<AgentParts> buildParts(const Config& config,
                                      std::function<void()> after_certificates) {
  AgentParts parts;
  if (config.capture == "bpf") {
    auto capture = BpfCapture::start(config);
    if (!capture.ok()) {
      return capture.status();
    }
    parts.capture = *std::move(capture);
  } else {
    LOG_WARN("--capture=none: outbound connections are not captured");
    parts.capture = std::make_unique<NoCapture>();
  }
  if (!config.controller.empty()) {
    if (auto s = controllerParts(config, std::move(after_certificates), parts); !s.ok()) {
      return s;
    }
  } else if (!config.manifests_dir.empty()) {
    parts.state = std::make_unique<ManifestStateSource>(config.manifests_dir, config.node_name,
                                                        config.trust_domain);
  } else {
    LOG_WARN("no --manifests: no services, no policies; enrolled pods only");
    model::NodeSnapshot empty;
    empty.node = config.node_name;
    empty.trust_domain = config.trust_domain;
    parts.state = std::make_unique<StaticStateSource>(empty);
  }
  if (!parts.certs) {
    parts.certs = std::make_unique<FileCertificateStore>(config.certs_dir, config.trust_domain);
  }
  return parts;
}

}  // namespace ferry::agent
