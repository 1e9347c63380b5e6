// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/parts.h"

#include "agent/bpf_capture.h"
#include "agent/certificates.h"
#include "agent/manifest_state.h"

namespace ferry::agent {

LogLevel parseLogLevel(const std::string& name) {
  if (name == "debug") {
    return LogLevel::kDebug;
  }
  if (name == "warn") {
    return LogLevel::kWarn;
  }
  if (name == "error") {
    return LogLevel::kError;
  }
  return LogLevel::kInfo;
}

absl::StatusOr<AgentParts> buildParts(const Config& config) {
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
  if (!config.manifests_dir.empty()) {
    parts.state = std::make_unique<ManifestStateSource>(config.manifests_dir, config.node_name,
                                                        config.trust_domain);
  } else {
    LOG_WARN("no --manifests: no services, no policies; enrolled pods only");
    model::NodeSnapshot empty;
    empty.node = config.node_name;
    empty.trust_domain = config.trust_domain;
    parts.state = std::make_unique<StaticStateSource>(empty);
  }
  parts.certs = std::make_unique<FileCertificateStore>(config.certs_dir, config.trust_domain);
  return parts;
}

}  // namespace ferry::agent
