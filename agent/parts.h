// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Builds the agent's parts from its Config: which capture, which state source, which
// certificate store. The only place that knows the concrete implementations.

#include <functional>

#include "absl/status/statusor.h"
#include "agent/agent.h"

namespace ferry::agent {

// `after_certificates`, if set, runs on the certificate store's thread after each round that
// installed a certificate or a trust bundle (ControllerCertificateStore::startRefreshing).
absl::StatusOr<AgentParts> buildParts(const Config& config,
                                      std::function<void()> after_certificates = nullptr);

}  // namespace ferry::agent
