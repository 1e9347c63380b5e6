// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Outbound (15001): a connection the capture redirected from an app in a local pod. The source
// workload is the pod whose listener accepted it; the capture tells the original destination;
// the workload state resolves a service VIP to one endpoint. Then one of:
//  - destination outside the mesh: plain TCP from the pod's namespace (passthrough);
//  - destination pod on this node: policy of the destination applied with the source's
//    identity, then plain TCP inside the destination's namespace (no wire, no encryption);
//  - destination pod on another node: an HBONE stream on a pooled mTLS connection to
//    <pod-ip>:15008, dialled from the source pod's namespace with the source pod's certificate.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/pods/local_pods.h"
#include "agent/proxy/inbound.h"
#include "agent/state/workload_state.h"
#include "agent/worker_context.h"

namespace ferry::agent {

// Identity of a local pod as a principal ("<td>/ns/<ns>/sa/<sa>").
std::string principalOf(const std::string& trust_domain, const PodIdentity& id);

// How a connection from a local pod reaches a resolved destination: the one answer for the L4
// path (forwardToDestination) and the routed HTTP path's upstream connections (upstream_pool.h).
enum class Delivery {
  kRefusedUnknown,      // a pod or Service address the state does not name (yet)
  kPassthrough,         // outside the mesh: plain TCP from the source pod's namespace
  kSameNode,            // a pod enrolled here: its policy applied here, plain TCP
  kRefusedNotEnrolled,  // a mesh pod of this node not enrolled here: nothing enforces its policy
  kHbone,               // a mesh pod of another node: an HBONE stream
};
Delivery deliveryOf(const WorkerContext& ctx, const WorkloadState& state, const LocalPodTable& pods,
                    const Destination& destination);

// Connects `fd` (a captured connection, or one end of a routed HTTP upstream's socketpair)
// to one resolved destination: passthrough, same node, or HBONE. Takes `fd`. `captured_to`:
// the destination the app connected to, when `fd` is the app's own socket.
void forwardToDestination(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& source,
                          const WorkloadState& state, const Destination& destination,
                          const std::string& source_ip, int fd,
                          const SocketAddress* captured_to = nullptr);

// The same-node question, one implementation for the agent's relay (forwardToDestination) and
// for the direct path's pairs (direct_paths.h): the delivery to the destination pod with the
// source pod's identity as policy sees it (decided by authorizeDelivery), and the reports the
// source's and the destination's agent would each make.
struct SameNodeCall {
  LocalDelivery in;
  std::string principal;  // the source pod's
};
SameNodeCall sameNodeCall(const WorkloadState& state, const LocalPodTable& pods,
                          const LocalPod& source, const Destination& destination,
                          const SocketAddress& to, const std::string& source_ip);
std::vector<ConnectionInfo> sameNodeReports(const WorkloadState& state, const LocalPod& source,
                                            const std::string& principal,
                                            const std::string& source_ip,
                                            const Destination& destination, const Decision& d);
// The direct-path key of source pod address -> destination pod address:port.
std::optional<bpf::DirectPair> directPairOf(const std::string& source_ip,
                                            const std::string& dest_ip, uint16_t port);

// Handles a connection the pod's 15001 listener accepted (the entry point of this file).
void acceptOutbound(WorkerContext& ctx, const std::shared_ptr<const LocalPod>& pod, int fd);

}  // namespace ferry::agent
