// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The destination side of HBONE (15008): mTLS with the pod's certificate, then each CONNECT
// stream authorized and delivered to the app in the pod's namespace.

#include <memory>

#include "agent/pods/local_pods.h"
#include "agent/worker_context.h"

namespace ferry::agent {

// Handles a connection the pod's 15008 listener accepted.
void acceptHbone(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& pod, int fd);

}  // namespace ferry::agent
