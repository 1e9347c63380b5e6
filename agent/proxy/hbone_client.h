// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The source side of HBONE: a captured connection to a remote mesh pod becomes a stream on a
// pooled mTLS connection (hbone_pool.h) to the destination pod's 15008.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/pods/local_pods.h"
#include "agent/state/workload_state.h"
#include "agent/worker_context.h"
#include "hbone/connection.h"

namespace ferry::agent {

class TunnelConnection;

// A CONNECT stream opened (not yet answered) on a pooled connection.
struct ClientStream {
  TunnelConnection* tunnel = nullptr;
  hbone::StreamId id = 0;
};

// Opens a stream from `source` (with the certificate of `identity`) to the remote mesh pod
// `destination` on a pooled connection, opening one when none has room: the CONNECT carries the
// source's baggage and `resume_header` (docs/upgrades.md; empty: no offer). The caller attaches
// its end to the stream and flushes the tunnel. One implementation for a captured connection
// (startHboneOutbound) and a routed HTTP upstream (agent/http/upstream_link.h).
absl::StatusOr<ClientStream> openClientStream(WorkerContext& ctx, const LocalPod& source,
                                              const PodIdentity& identity,
                                              const WorkloadState& state,
                                              const Destination& destination,
                                              const std::string& resume_header);

// Starts the tunnel for a captured connection to a remote mesh pod. Takes `downstream_fd`.
void startHboneOutbound(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& source,
                        const PodIdentity& identity, const Destination& destination,
                        const std::string& source_ip, int downstream_fd);

}  // namespace ferry::agent
