// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/ha/leader_election.h"

#include <nlohmann/json.hpp>
#include "absl/strings/str_cat.h"
#include "log/log.h"

namespace ferry::controller {
namespace {

using nlohmann::json;

// metav1.MicroTime
std::string microTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

std::string holderOf(const json& lease) {
  const json* spec = lease.contains("spec") ? &lease["spec"] : nullptr;
  if (spec && spec->contains("holderIdentity") && (*spec)["holderIdentity"].is_string()) {
    return (*spec)["holderIdentity"].get<std::string>();
  }
  return "";
}

}  // namespace

absl::Status LeaderElectionConfig::validate() const {
  if (lease_namespace.empty() || lease_name.empty() || identity.empty()) {
    return absl::InvalidArgumentError(
        "leader election needs a lease namespace, a lease name and this replica's identity");
  }
  if (!(retry_period > absl::ZeroDuration() && retry_period < renew_deadline &&
        renew_deadline < lease_duration)) {
    return absl::InvalidArgumentError(
        absl::StrCat("leader election needs 0 < retry period (", absl::FormatDuration(retry_period),
                     ") < renew deadline (", absl::FormatDuration(renew_deadline),
                     ") < lease duration (", absl::FormatDuration(lease_duration), ")"));
  }
  return absl::OkStatus();
}

LeaderElector::LeaderElector(const kube::Client& client, LeaderElectionConfig config, Clock clock)
    : client_(client), config_(std::move(config)), clock_(std::move(clock)) {}

LeaderElector::~LeaderElector() {
  stop();
}

absl::Status LeaderElector::tryAcquireOrRenew(absl::Time now) {
  const int64_t duration_s = absl::ToInt64Seconds(config_.lease_duration);
  auto current = client_.get(kube::kLeases, config_.lease_namespace, config_.lease_name);
  if (!current.ok() && kube::httpStatusOf(current.status()) == 404) {
    json lease = {
        {"apiVersion", kube::kLeases.apiVersion()},
        {"kind", kube::kLeases.kind},
        {"metadata", {{"name", config_.lease_name}, {"namespace", config_.lease_namespace}}},
        {"spec",
         {{"holderIdentity", config_.identity},
          {"leaseDurationSeconds", duration_s},
          {"acquireTime", microTime(now)},
          {"renewTime", microTime(now)},
          {"leaseTransitions", 0}}}};
    auto created = client_.create(kube::kLeases, lease);
    if (!created.ok()) {
      return created.status();  // another replica created it first: it leads
    }
    observed_record_ = created->dump();
    observed_at_ = now;
    return absl::OkStatus();
  }
  if (!current.ok()) {
    return current.status();
  }
  json lease = *current;
  const std::string record = lease.value("spec", json::object()).dump();
  if (record != observed_record_) {
    observed_record_ = record;
    observed_at_ = now;
  }
  const std::string holder = holderOf(lease);
  const bool ours = holder == config_.identity;
  if (!ours && !holder.empty() && observed_at_ + config_.lease_duration > now) {
    return absl::FailedPreconditionError(absl::StrCat("the lease is held by ", holder));
  }
  json& spec = lease["spec"];
  if (!ours) {
    spec["acquireTime"] = microTime(now);
    spec["leaseTransitions"] = spec.value("leaseTransitions", 0) + 1;
  }
  spec["holderIdentity"] = config_.identity;
  spec["leaseDurationSeconds"] = duration_s;
  spec["renewTime"] = microTime(now);
  // metadata.resourceVersion is kept: a concurrent writer makes this a 409, never two leaders.
  auto updated = client_.update(kube::kLeases, lease);
  if (!updated.ok()) {
    return updated.status();
  }
  observed_record_ = (*updated).value("spec", json::object()).dump();
  observed_at_ = now;
  return absl::OkStatus();
}

bool LeaderElector::step() {
  const absl::Time now = clock_();
  absl::Status status = tryAcquireOrRenew(now);
  if (status.ok()) {
    last_renew_ = now;
    leading_ = true;
    setError(status);
    return true;
  }
  setError(status);
  // A leader that merely failed to renew keeps leading until its renew deadline passes; the
  // lease it holds stays valid for others until lease_duration, which is longer.
  if (leading_ && now - last_renew_ >= config_.renew_deadline) {
    leading_ = false;
  } else if (leading_ && absl::IsFailedPrecondition(status)) {
    leading_ = false;  // someone else holds it: we lost it
  }
  return leading_;
}

void LeaderElector::start(std::function<void(bool)> on_change) {
  thread_ = std::thread([this, on_change = std::move(on_change)] {
    bool was = false;
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      lock.unlock();
      const bool now_leading = step();
      if (now_leading != was) {
        was = now_leading;
        if (on_change) {
          on_change(now_leading);
        }
      }
      lock.lock();
      wake_.wait_for(lock, absl::ToChronoMilliseconds(config_.retry_period),
                     [this] { return stopping_; });
    }
  });
}

void LeaderElector::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  if (!leading_) {
    return;
  }
  leading_ = false;
  auto current = client_.get(kube::kLeases, config_.lease_namespace, config_.lease_name);
  if (current.ok() && holderOf(*current) == config_.identity) {
    json lease = *current;
    lease["spec"]["holderIdentity"] = "";
    lease["spec"]["leaseDurationSeconds"] = 1;
    if (auto s = client_.update(kube::kLeases, lease); !s.ok()) {
      LOG_WARN("could not release the lease: ", s.status().message());
    }
  }
}

void LeaderElector::setError(const absl::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  last_error_ = status.ok() ? "" : std::string(status.message());
}

std::string LeaderElector::lastError() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

}  // namespace ferry::controller
