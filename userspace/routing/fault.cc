// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "routing/fault.h"

#include "absl/random/distributions.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ferry::routing {
namespace {

bool hit(double percent, absl::BitGenRef rng) {
  if (percent >= 100) {
    return true;
  }
  if (percent <= 0) {
    return false;
  }
  return absl::Uniform<double>(rng, 0.0, 100.0) < percent;
}

const std::string* find(const model::Labels& annotations, const char* name) {
  auto it = annotations.find(name);
  return it == annotations.end() ? nullptr : &it->second;
}

absl::Status bad(const char* name, const std::string& value, const char* want) {
  return absl::InvalidArgumentError(
      absl::StrCat("annotation ", name, ": \"", value, "\" is not ", want));
}

absl::StatusOr<double> percent(const model::Labels& annotations, const char* name) {
  const std::string* value = find(annotations, name);
  if (value == nullptr) {
    return 100.0;
  }
  double p = 0;
  if (!absl::SimpleAtod(*value, &p) || !(p >= 0 && p <= 100)) {
    return bad(name, *value, "a percentage between 0 and 100");
  }
  return p;
}

}  // namespace

FaultAction FaultConfig::roll(absl::BitGenRef rng) const {
  FaultAction action;
  if (delay && hit(delay_percent, rng)) {
    action.delay = delay;
  }
  if (abort_status && hit(abort_percent, rng)) {
    action.abort_status = abort_status;
  }
  return action;
}

absl::StatusOr<std::optional<FaultConfig>> parseFaultAnnotations(const model::Labels& annotations) {
  FaultConfig config;
  if (const std::string* v = find(annotations, kFaultDelayMs)) {
    uint32_t ms = 0;
    // An hour is far past any request timeout: a bigger value is a typo.
    if (!absl::SimpleAtoi(*v, &ms) || ms > 3'600'000) {
      return bad(kFaultDelayMs, *v, "a whole number of milliseconds up to 3600000");
    }
    config.delay = absl::Milliseconds(ms);
  }
  if (const std::string* v = find(annotations, kFaultAbortStatus)) {
    int status = 0;
    if (!absl::SimpleAtoi(*v, &status) || status < 200 || status > 599) {
      return bad(kFaultAbortStatus, *v, "an HTTP status between 200 and 599");
    }
    config.abort_status = status;
  }
  auto delay_percent = percent(annotations, kFaultDelayPercent);
  if (!delay_percent.ok()) {
    return delay_percent.status();
  }
  auto abort_percent = percent(annotations, kFaultAbortPercent);
  if (!abort_percent.ok()) {
    return abort_percent.status();
  }
  if (!config.delay && find(annotations, kFaultDelayPercent) != nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("annotation ", kFaultDelayPercent, " needs ", kFaultDelayMs));
  }
  if (!config.abort_status && find(annotations, kFaultAbortPercent) != nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("annotation ", kFaultAbortPercent, " needs ", kFaultAbortStatus));
  }
  config.delay_percent = *delay_percent;
  config.abort_percent = *abort_percent;
  if (config.empty()) {
    return std::nullopt;
  }
  return config;
}

}  // namespace ferry::routing
