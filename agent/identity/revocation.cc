// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/identity/revocation.h"

#include <vector>

#include "absl/hash/hash.h"
#include "log/log.h"

namespace ferry::agent {

Revocations::~Revocations() {
  if (timer_ != 0) {
    loop_.cancelTimer(timer_);
  }
}

Revocations::Id Revocations::add(const model::Workload& destination, ConnectionAttributes attrs,
                                 Close close) {
  if (checked_ == nullptr) {
    checked_ = workloads_.current();
  }
  Id id = next_id_++;
  entries_.emplace(id,
                   Entry{subjects_.get(Subject{destination.uid, destination.key, std::move(attrs)}),
                         std::move(close)});
  arm();
  return id;
}

size_t Revocations::SubjectHash::operator()(const Subject& s) const {
  return absl::HashOf(s.uid, s.attrs.principal, s.attrs.source_ip, s.attrs.destination_ip,
                      s.attrs.destination_port);
}

void Revocations::arm() {
  if (timer_ != 0 || entries_.empty()) {
    return;
  }
  timer_ = loop_.addTimer(kRecheckInterval, [this] {
    timer_ = 0;
    recheck();
    arm();
  });
}

void Revocations::recheck() {
  auto state = workloads_.current();
  if (state == checked_) {
    return;
  }
  checked_ = state;
  std::vector<std::pair<Id, std::string>> denied;
  for (const auto& [id, e] : entries_) {
    const Subject& s = *e.subject;
    const model::Workload* w = state->workloadByUid(s.uid);
    model::Workload fallback;
    if (w == nullptr) {
      fallback.uid = s.uid;
      fallback.key = s.key;
      w = &fallback;
    }
    Decision d = state->policies().authorize(*w, s.attrs);
    if (!d.allowed) {
      denied.emplace_back(id, std::move(d.reason));
    }
  }
  // Closing may call remove() (and so touch entries_): take each entry out first.
  for (auto& [id, reason] : denied) {
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      continue;
    }
    Entry e = std::move(it->second);
    entries_.erase(it);
    if (!e.close()) {
      continue;  // it had finished already: nothing was revoked
    }
    stats_.inc(stats_.policy_revoked);
    const Subject& s = *e.subject;
    LOG_INFO_EVERY_SECOND(
        "closed ", s.attrs.principal.empty() ? s.attrs.source_ip : s.attrs.principal, " -> ",
        s.key.str(), " port ", s.attrs.destination_port, ": no longer allowed: ", reason);
  }
}

}  // namespace ferry::agent
