// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

#include "model/model.h"
#include "routing/cluster.h"

// Per-Service load balancing, outlier detection and circuit breaking, read from annotations on
// the backend Service (a Service has no field for them; Istio keeps them in a DestinationRule,
// which Ferry does not have). See README.md for the table of names, ranges and defaults.
namespace ferry::routing {

inline constexpr char kLbPolicyAnnotation[] = "ferry.dev/lb-policy";
inline constexpr char kOutlierConsecutiveErrorsAnnotation[] =
    "ferry.dev/outlier-consecutive-errors";
inline constexpr char kOutlierBaseEjectionMsAnnotation[] = "ferry.dev/outlier-base-ejection-ms";
inline constexpr char kOutlierMaxEjectionPercentAnnotation[] =
    "ferry.dev/outlier-max-ejection-percent";
inline constexpr char kMaxConnectionsAnnotation[] = "ferry.dev/max-connections";
inline constexpr char kMaxPendingRequestsAnnotation[] = "ferry.dev/max-pending-requests";
inline constexpr char kMaxRequestsAnnotation[] = "ferry.dev/max-requests";

struct ServiceOptions {
  ClusterOptions cluster;
  // One line per refused annotation, naming it, its value, what it must be and the default
  // kept in its place. The other annotations still apply.
  std::vector<std::string> errors;
};

// `defaults` supplies every field no (good) annotation sets; other annotations are ignored.
ServiceOptions parseServiceOptions(const model::Labels& annotations,
                                   const ClusterOptions& defaults = {});

}  // namespace ferry::routing
