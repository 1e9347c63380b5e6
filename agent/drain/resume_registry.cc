// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/drain/resume_registry.h"

namespace ferry::agent {

bool ResumeRegistry::add(const hbone::ResumeToken& token, Entry entry) {
  std::lock_guard lock(mu_);
  return slots_.try_emplace(token, Slot{.entry = std::move(entry)}).second;
}

void ResumeRegistry::remove(const hbone::ResumeToken& token) {
  std::lock_guard lock(mu_);
  slots_.erase(token);
}

void ResumeRegistry::suspend(const hbone::ResumeToken& token, Clock::time_point deadline) {
  std::lock_guard lock(mu_);
  auto it = slots_.find(token);
  if (it != slots_.end() && it->second.state == State::kAttached) {
    it->second.state = State::kSuspended;
    it->second.deadline = deadline;
  }
}

void ResumeRegistry::handedOver(const hbone::ResumeToken& token) {
  std::lock_guard lock(mu_);
  auto it = slots_.find(token);
  if (it != slots_.end()) {
    it->second.state = State::kHandedOver;
  }
}

ResumeRegistry::Answer ResumeRegistry::resume(const hbone::ResumeToken& token,
                                              const tls::SpiffeId& peer, std::string_view authority,
                                              bool expecting_more) {
  std::lock_guard lock(mu_);
  auto it = slots_.find(token);
  if (it == slots_.end()) {
    return {.status = expecting_more ? hbone::kResumeRetry : hbone::kResumeUnknown};
  }
  Slot& slot = it->second;
  // The binding first: a handed-over stream's existence is nobody else's business either.
  hbone::ResumeCheck check = hbone::checkResume(slot.entry.binding, peer, authority);
  if (check != hbone::ResumeCheck::kOk) {
    return {.status = hbone::resumeStatus(check)};
  }
  if (slot.state == State::kHandedOver) {
    return {.status = hbone::kResumeRetry};
  }
  // Attached or suspended: the newest resume wins (the old connection may not know yet that
  // its peer restarted).
  slot.state = State::kAttached;
  return {.status = 200, .entry = slot.entry};
}

std::vector<ResumeRegistry::Entry> ResumeRegistry::expire(Clock::time_point now) {
  std::lock_guard lock(mu_);
  std::vector<Entry> out;
  for (auto it = slots_.begin(); it != slots_.end();) {
    if (it->second.state == State::kSuspended && it->second.deadline <= now) {
      out.push_back(std::move(it->second.entry));
      slots_.erase(it++);
    } else {
      ++it;
    }
  }
  return out;
}

size_t ResumeRegistry::size() const {
  std::lock_guard lock(mu_);
  return slots_.size();
}

}  // namespace ferry::agent
