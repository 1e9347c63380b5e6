// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The inbound side shared by plaintext (15006), HBONE (15008) and same-node delivery: open the
// connection to the app inside its pod's namespace.

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/functional/function_ref.h"
#include "agent/io/sockets.h"
#include "agent/pods/local_pods.h"
#include "agent/proxy/tcp_relay.h"
#include "agent/telemetry/telemetry.h"
#include "agent/worker_context.h"
#include "bpf/capture.h"

namespace ferry::agent {

class PipeEnd;

class RateLimits;
class Revocations;

// Handles a connection the pod's 15006 listener accepted (plaintext inbound).
void acceptInboundPlain(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& pod, int fd);

// One connection to a local pod's port, served as its destination whoever carried it here (the
// pod's 15006 listener, or this agent's own outbound when the source pod is on this node too):
// the pod's policy with `attrs` as the peer, then the HTTP filters on an HTTP port, or the
// connection rate limit, the app connect and the relay (revocable).
struct LocalDelivery {
  std::shared_ptr<const LocalPod> pod;        // the destination
  const model::Workload* workload = nullptr;  // its workload (state's, or workloadOf's fallback)
  SocketAddress to;                           // the app: the pod's own address and the port
  ConnectionAttributes attrs;                 // the peer as policy sees it (`http` is set here)
  std::string peer;                           // who connected, for log lines
  std::atomic<int64_t>* connect_failures = nullptr;  // counts an app that cannot be reached
  // Set by a same-node delivery of an app's own connection to a pod address: offered to the
  // direct path (direct_paths.h) once admitted as L4.
  std::optional<bpf::DirectPair> direct;
};
// The destination's policy for `in` (setting `in.attrs.http`): the one decision a local
// delivery and the direct path's pairs both take.
Decision authorizeDelivery(const WorkloadState& state, LocalDelivery& in, Stats* stats);
// Who a local delivery serves: a connected socket (the app's own, or one end of a socketpair),
// or, for a routed request to an HTTP port of a pod on this node, the inbound side of an
// in-process pipe (agent/http/local_pipe.h), which only an HTTP port takes.
struct LocalClient {
  int fd = -1;
  std::unique_ptr<PipeEnd> pipe;
};
// `reports`: the connection's reports once the decision is known, the destination's first (a
// denial is reported on it); each is opened when the relay starts. Takes the client: reset when
// refused.
void deliverToLocalPod(WorkerContext& ctx, const WorkloadState& state, LocalDelivery in,
                       absl::FunctionRef<std::vector<ConnectionInfo>(const Decision&)> reports,
                       LocalClient client);

// A non-blocking connect (in progress) from inside `pod`'s namespace to `app` (the pod's own
// address and the port the client asked for).
absl::StatusOr<int> connectToApp(const PodSockets& sockets, const LocalPod& pod,
                                 const SocketAddress& app);

// The destination workload for `pod`: the state's (by uid), else one built from what the CNI
// told us at enrolment (stored in `fallback`).
const model::Workload& workloadOf(const WorkloadState& state, const LocalPod& pod,
                                  model::Workload& fallback);

// A new connection to a TCP (non-HTTP) port of `pod` past its RateLimitPolicies (`limits`, may be
// null: none): false, counted in `stats` (ferry_rate_limited_total) and logged, when a limit
// refuses it; the caller then resets it. `principal` is the peer's SPIFFE ID ("spiffe://..."),
// empty for plaintext.
bool admitConnectionRate(RateLimits* limits, Stats& stats, const LocalPod& pod, uint16_t port,
                         const std::string& principal, const std::string& peer);

// The worker's registry of revocable connections (identity/revocation.h), created on first use.
Revocations& revocationsOf(WorkerContext& ctx);

// Relays between two sockets (upstream still connecting) with the connection counted in stats.
// `connect_failures` (may be null) counts an upstream that never connected. `telemetry`: the
// connection's reports (one per reporter), closed with the relay's byte counts. `on_done` (may be
// empty) runs when the relay has finished. Returns the relay (it deletes itself when done).
TcpRelay* relayCounted(WorkerContext& ctx, int downstream, int upstream,
                       std::atomic<int64_t>* connect_failures,
                       std::vector<ConnectionTelemetry> telemetry = {},
                       std::function<void()> on_done = {});

}  // namespace ferry::agent
