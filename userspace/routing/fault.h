// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <optional>
#include <string>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "model/model.h"

// Fault injection for resilience testing, configured by annotations on the HTTPRoute (Gateway
// API has no fault filter). See README.md for the annotation names.
namespace ferry::routing {

inline constexpr char kFaultDelayMs[] = "fault.ferry.dev/delay-ms";
inline constexpr char kFaultDelayPercent[] = "fault.ferry.dev/delay-percent";
inline constexpr char kFaultAbortStatus[] = "fault.ferry.dev/abort-status";
inline constexpr char kFaultAbortPercent[] = "fault.ferry.dev/abort-percent";

// What to do with a request that matched a rule.
struct FaultAction {
  std::optional<absl::Duration> delay;  // delay before forwarding (fault injection)
  std::optional<int> abort_status;      // answer this status without forwarding
};

struct FaultConfig {
  std::optional<absl::Duration> delay;
  double delay_percent = 100;  // share of requests delayed, 0..100
  std::optional<int> abort_status;
  double abort_percent = 100;  // share of requests aborted, 0..100

  bool empty() const { return !delay && !abort_status; }
  // Draws the dice once per request: delay and abort are independent.
  FaultAction roll(absl::BitGenRef rng) const;
};

// Reads the fault.ferry.dev/* annotations. nullopt when none is present; an error naming the
// annotation for a bad value (the route is then skipped rather than run without its faults).
absl::StatusOr<std::optional<FaultConfig>> parseFaultAnnotations(const model::Labels& annotations);

}  // namespace ferry::routing
