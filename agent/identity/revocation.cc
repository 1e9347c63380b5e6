// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/identity/revocation.h"

#include <tuple>
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

namespace {

// Every field of a subject. A field added to ConnectionAttributes must be added here, or entries
// that differ in it would share one subject: the size below stops the build until it is.
auto subjectFields(const std::string& uid, const model::ObjectKey& key,
                   const ConnectionAttributes& a) {
  static_assert(sizeof(ConnectionAttributes) == 4 * sizeof(std::string) + 8);
  static_assert(sizeof(model::ObjectKey) == 2 * sizeof(std::string));
  return std::tie(uid, key.ns, key.name, a.principal, a.source_namespace, a.source_ip,
                  a.destination_ip, a.destination_port, a.http);
}

}  // namespace

size_t Revocations::SubjectHash::operator()(const Subject& s) const {
  return absl::HashOf(subjectFields(s.uid, s.key, s.attrs));
}

bool Revocations::SubjectEqual::operator()(const Subject& a, const Subject& b) const {
  return subjectFields(a.uid, a.key, a.attrs) == subjectFields(b.uid, b.key, b.attrs);
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
