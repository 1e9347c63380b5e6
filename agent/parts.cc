// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/parts.h"

#include "agent/certificates.h"

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
    return absl::UnimplementedError("--capture=bpf: the BPF loader is not wired in yet");
  }
  parts.capture = std::make_unique<NoCapture>();
  model::NodeSnapshot empty;
  empty.node = config.node_name;
  empty.trust_domain = config.trust_domain;
  parts.state = std::make_unique<StaticStateSource>(empty);
  parts.certs = std::make_unique<FileCertificateStore>(config.certs_dir, config.trust_domain);
  return parts;
}

}  // namespace ferry::agent
