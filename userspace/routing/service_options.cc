// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "routing/service_options.h"

#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ferry::routing {
namespace {

// An hour: past any sensible ejection, so a bigger value is a typo (as for fault delays).
constexpr uint32_t kMaxBaseEjectionMs = 3'600'000;

class Reader {
 public:
  Reader(const model::Labels& annotations, ServiceOptions& out)
      : annotations_(annotations), out_(out) {}

  // Sets `field` from annotation `name` when present and a whole number in [min, max].
  void number(const char* name, uint32_t min, uint32_t max, uint32_t& field) {
    const std::string* value = find(name);
    if (value == nullptr) {
      return;
    }
    uint32_t n = 0;
    if (!absl::SimpleAtoi(*value, &n) || n < min || n > max) {
      refuse(name, *value, absl::StrCat("a whole number from ", min, " to ", max),
             absl::StrCat(field));
      return;
    }
    field = n;
  }

  void lbPolicy(LbPolicy& field) {
    const std::string* value = find(kLbPolicyAnnotation);
    if (value == nullptr) {
      return;
    }
    if (*value == "least-request") {
      field = LbPolicy::kLeastRequest;
    } else if (*value == "round-robin") {
      field = LbPolicy::kRoundRobin;
    } else {
      refuse(kLbPolicyAnnotation, *value, "least-request or round-robin",
             field == LbPolicy::kRoundRobin ? "round-robin" : "least-request");
    }
  }

  void baseEjection(absl::Duration& field) {
    uint32_t ms = static_cast<uint32_t>(absl::ToInt64Milliseconds(field));
    const uint32_t before = ms;
    number(kOutlierBaseEjectionMsAnnotation, 1, kMaxBaseEjectionMs, ms);
    if (ms != before) {
      field = absl::Milliseconds(ms);
    }
  }

 private:
  const std::string* find(const char* name) const {
    auto it = annotations_.find(name);
    return it == annotations_.end() ? nullptr : &it->second;
  }

  void refuse(const char* name, const std::string& value, const std::string& want,
              const std::string& kept) {
    out_.errors.push_back(absl::StrCat("annotation ", name, ": \"", value, "\" is not ", want,
                                       "; keeping the default ", kept));
  }

  const model::Labels& annotations_;
  ServiceOptions& out_;
};

}  // namespace

ServiceOptions parseServiceOptions(const model::Labels& annotations,
                                   const ClusterOptions& defaults) {
  ServiceOptions out;
  out.cluster = defaults;
  ClusterOptions& c = out.cluster;
  Reader read(annotations, out);
  read.lbPolicy(c.lb);
  // 0 turns outlier detection off (Istio's consecutive5xxErrors: 0 does the same).
  read.number(kOutlierConsecutiveErrorsAnnotation, 0, 1'000'000, c.consecutive_errors);
  read.baseEjection(c.base_ejection);
  read.number(kOutlierMaxEjectionPercentAnnotation, 0, 100, c.max_ejection_percent);
  read.number(kMaxConnectionsAnnotation, 1, UINT32_MAX, c.max_connections);
  // 0: no request ever waits for a connection; at the connection limit it is refused at once.
  read.number(kMaxPendingRequestsAnnotation, 0, UINT32_MAX, c.max_pending_requests);
  read.number(kMaxRequestsAnnotation, 1, UINT32_MAX, c.max_requests);
  return out;
}

}  // namespace ferry::routing
