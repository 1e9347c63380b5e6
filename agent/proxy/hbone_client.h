// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The source side of HBONE: a captured connection to a remote mesh pod becomes a stream on a
// pooled mTLS connection (hbone_pool.h) to the destination pod's 15008.

#include <memory>
#include <string>

#include "agent/pods/local_pods.h"
#include "agent/state/workload_state.h"
#include "agent/worker_context.h"

namespace ferry::agent {

// Starts the tunnel for a captured connection to a remote mesh pod. Takes `downstream_fd`.
void startHboneOutbound(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& source,
                        const PodIdentity& identity, const Destination& destination,
                        const std::string& source_ip, int downstream_fd);

}  // namespace ferry::agent
