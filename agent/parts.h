// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Builds the agent's parts from its Config: which capture, which state source, which
// certificate store. The only place that knows the concrete implementations.

#include "absl/status/statusor.h"
#include "agent/agent.h"

namespace ferry::agent {

absl::StatusOr<AgentParts> buildParts(const Config& config);

}  // namespace ferry::agent
