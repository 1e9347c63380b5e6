// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The routing library in one include: what the agent's HTTP-aware outbound path calls.
//   route_table.h  RouteTable (compiled HTTPRoutes, Gateway API precedence), CompiledRule
//   cluster.h      Cluster (P2C/round robin, zone preference, outlier detection, limits)
//   connection_limiter.h  max_connections / max_pending_requests across workers
//   retry.h        RetryPolicy, RetryBudget, retryable(), backoff()
//   fault.h        fault injection from fault.ferry.dev/* annotations
//   service_options.h  ClusterOptions from ferry.dev/* annotations on a Service
//   stats.h        RouteStats counters
#include "routing/cluster.h"
#include "routing/connection_limiter.h"
#include "routing/fault.h"
#include "routing/retry.h"
#include "routing/route_table.h"
#include "routing/service_options.h"
#include "routing/stats.h"
