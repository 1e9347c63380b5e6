// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Placeholder for the HBONE paths until userspace/hbone lands: refuse, log, count.
#include "agent/listeners.h"
#include "agent/log.h"
#include "agent/outbound.h"

namespace ferry::agent {

void startHboneOutbound(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& source,
                        const PodIdentity&, const Destination& destination, const std::string&,
                        int downstream_fd) {
  ctx.stats.inc(ctx.stats.outbound_failed);
  LOG_WARN("outbound ", source->info.name, " -> ", destination.ip, ":", destination.port,
           ": cross-node tunnel not available in this build");
  closeWithReset(downstream_fd);
}

void acceptHbone(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& pod, int fd) {
  ctx.stats.inc(ctx.stats.tls_handshake_failures);
  closeWithReset(fd);
}

}  // namespace ferry::agent
