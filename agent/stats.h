// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The agent's counters. Each worker owns one Stats (written only by that worker, with relaxed
// atomics so the admin thread can read them without tearing); the admin endpoint sums them.
// Metrics with ferry_/istio_ names are built on top of these by the metrics layer.

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ferry::agent {

#define FERRY_AGENT_COUNTERS(X)                                                           \
  X(outbound_accepted)            /* captured connections accepted on 15001 */            \
  X(outbound_no_original_dst)     /* the capture had no record: reset */                  \
  X(outbound_no_endpoint)         /* VIP without a ready endpoint: reset */               \
  X(outbound_passthrough)         /* destination outside the mesh: plain TCP */           \
  X(outbound_unknown_destination) /* pod or Service address no snapshot names: reset */   \
  X(outbound_not_enrolled)        /* mesh pod on this node not enrolled here: reset */    \
  X(outbound_same_node)           /* local destination: no encryption, policy applied */  \
  X(same_node_direct)             /* same-node connections the kernel carried directly */ \
  X(outbound_hbone)               /* tunnelled to a remote node */                        \
  X(outbound_failed)              /* upstream connect or tunnel failed */                 \
  X(routed_upstream_streams)      /* routed HTTP upstreams that are HBONE streams */      \
  X(routed_upstream_pipes)        /* ... in-process pipes to a same-node HTTP port */     \
  X(routed_upstream_sockets)      /* routed HTTP upstreams through a socketpair */        \
  X(inbound_plain_accepted)       /* plaintext connections on 15006 */                    \
  X(inbound_plain_refused_strict) /* refused: STRICT mTLS */                              \
  X(inbound_direct_raced)         /* a direct connect that raced its pair's removal */    \
  X(inbound_hbone_streams)        /* CONNECT streams on 15008 */                          \
  X(inbound_hbone_bad_authority)  /* :authority not a local pod address */                \
  X(baggage_rejected)             /* CONNECT baggage the peer certificate contradicts */  \
  X(inbound_app_connect_failed)   /* the app refused or timed out */                      \
  X(policy_denied)                /* refused by authorization policy */                   \
  X(policy_dry_run_allowed)       /* decisions dry-run policies would allow */            \
  X(policy_dry_run_denied)        /* decisions dry-run policies would deny */             \
  X(http_requests_allowed)        /* L7: requests allowed on inbound HTTP ports */        \
  X(http_requests_denied)         /* L7: requests answered 403 by policy */               \
  X(http_requests_rate_limited)   /* L7: requests answered 429 by a RateLimitPolicy */    \
  X(tcp_connections_rate_limited) /* TCP: connections refused by a RateLimitPolicy */     \
  X(http_connections)             /* inbound connections run through an HTTP filter */    \
  X(jwt_valid)                    /* L7: requests with a verified JWT */                  \
  X(jwt_refused)                  /* L7: requests answered 401 for a bad JWT */           \
  X(policy_revoked)               /* open connections closed after a policy change */     \
  X(tls_handshakes_client)        /* completed outbound TLS handshakes */                 \
  X(tls_handshakes_server)        /* completed inbound TLS handshakes */                  \
  X(tls_handshake_failures)       /* either side, any reason */                           \
  X(tls_peer_rejected)            /* peer certificate failed SPIFFE verification */       \
  X(pool_connections_opened)      /* new pooled HBONE connections */                      \
  X(pool_streams_reused)          /* streams carried by an existing connection */         \
  X(connections_active)           /* gauge: proxied connections in flight */              \
  X(accept_overload_emfile)       /* accept failed: process out of descriptors */         \
  X(accept_overload_enfile)       /* accept failed: system out of descriptors */          \
  X(accept_overload_enobufs)      /* accept failed: out of socket buffers */              \
  X(accept_overload_enomem)       /* accept failed: out of memory */                      \
  X(accept_shed)                  /* accepted with the fd reserve, closed at once */      \
  X(http_awaiting_headers)        /* gauge: HTTP connections waiting for a head */        \
  X(http_header_timeouts)         /* closed: no complete request head in time */          \
  X(http_idle_timeouts)           /* closed: keep-alive idle too long */                  \
  X(http_headers_evicted)         /* oldest waiter closed to admit a new one (cap) */     \
  X(http_headers_refused)         /* new HTTP connection refused (cap, none to evict) */  \
  X(streams_handed_over)          /* resumable streams given to a successor agent */      \
  X(streams_taken_over)           /* resumable streams received from a predecessor */     \
  X(streams_suspended)            /* resumable streams the peer's agent handed on */      \
  X(streams_resumed)              /* resumable streams continued on a new stream */       \
  X(streams_resume_failed)        /* resumes refused or unreconcilable: app reset */      \
  X(streams_resume_expired)       /* parked streams nobody resumed in time: app reset */  \
  X(resumable_streams)            /* gauge: streams that can be resumed */                \
  X(resume_ledger_bytes)          /* gauge: memory their retransmission ledgers hold */   \
  X(bytes_sent_upstream)          /* app -> destination payload bytes */                  \
  X(bytes_sent_downstream)        /* destination -> app payload bytes */

struct Stats {
#define FERRY_DECLARE(name) std::atomic<int64_t> name{0};
  FERRY_AGENT_COUNTERS(FERRY_DECLARE)
#undef FERRY_DECLARE

  void inc(std::atomic<int64_t>& c, int64_t by = 1) {
    c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
};

// Sums the workers' stats into name -> value.
inline std::map<std::string, int64_t> sumStats(const std::vector<const Stats*>& all) {
  std::map<std::string, int64_t> out;
#define FERRY_SUM(name)      \
  out[#name] = 0;            \
  for (const Stats* s : all) \
    out[#name] += s->name.load(std::memory_order_relaxed);
  FERRY_AGENT_COUNTERS(FERRY_SUM)
#undef FERRY_SUM
  return out;
}

}  // namespace ferry::agent
