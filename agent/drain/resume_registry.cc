// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/drain/resume_registry.h"

#include "agent/io/sockets.h"

namespace ferry::agent {

ResumeRegistry::~ResumeRegistry() {
  for (auto& [token, slot] : slots_) {
    if (slot.bound && slot.bound->stream && slot.bound->stream->app_fd >= 0) {
      closeWithReset(slot.bound->stream->app_fd);
    }
  }
}

std::unique_ptr<ResumeRegistry::Bound> ResumeRegistry::bind(const HandedStream& stream) {
  absl::StatusOr<tls::SpiffeId> peer = tls::SpiffeId::parse(stream.peer);
  if (!peer.ok()) {
    return nullptr;
  }
  auto bound = std::make_unique<Bound>();
  bound->binding = {*peer, stream.authority};
  return bound;
}

bool ResumeRegistry::add(const hbone::ResumeToken& token) {
  std::lock_guard lock(mu_);
  return slots_.try_emplace(token).second;
}

void ResumeRegistry::remove(const hbone::ResumeToken& token) {
  std::lock_guard lock(mu_);
  slots_.erase(token);
}

bool ResumeRegistry::park(HandedStream stream, Clock::time_point deadline) {
  std::unique_ptr<Bound> bound = bind(stream);
  if (bound == nullptr) {
    return false;
  }
  std::lock_guard lock(mu_);
  Slot& slot = slots_[stream.token];
  bound->stream = std::move(stream);
  slot.state = State::kParked;
  slot.deadline = deadline;
  slot.bound = std::move(bound);
  return true;
}

void ResumeRegistry::handedOver(const HandedStream& stream) {
  std::unique_ptr<Bound> bound = bind(stream);
  std::lock_guard lock(mu_);
  auto it = slots_.find(stream.token);
  if (it != slots_.end()) {
    it->second.state = State::kHandedOver;
    it->second.bound = std::move(bound);  // null for a bad peer: then any resume is told to retry
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
  if (slot.bound != nullptr) {
    // The binding first: a handed-over stream's existence is nobody else's business either.
    hbone::ResumeCheck check = hbone::checkResume(slot.bound->binding, peer, authority);
    if (check != hbone::ResumeCheck::kOk) {
      return {.status = hbone::resumeStatus(check)};
    }
  }
  if (slot.state != State::kParked) {
    return {.status = hbone::kResumeRetry};
  }
  slot.state = State::kAttached;
  Answer answer{.status = 200, .stream = std::move(slot.bound->stream)};
  slot.bound.reset();
  return answer;
}

std::vector<HandedStream> ResumeRegistry::expire(Clock::time_point now) {
  std::lock_guard lock(mu_);
  std::vector<HandedStream> out;
  for (auto it = slots_.begin(); it != slots_.end();) {
    if (it->second.state == State::kParked && it->second.deadline <= now) {
      out.push_back(*std::move(it->second.bound->stream));
      slots_.erase(it++);
    } else {
      ++it;
    }
  }
  return out;
}

std::vector<HandedStream> ResumeRegistry::handOverParked() {
  std::lock_guard lock(mu_);
  std::vector<HandedStream> out;
  for (auto& [token, slot] : slots_) {
    if (slot.state == State::kParked) {
      out.push_back(*std::move(slot.bound->stream));
      slot.bound->stream.reset();
      slot.state = State::kHandedOver;
    }
  }
  return out;
}

size_t ResumeRegistry::size() const {
  std::lock_guard lock(mu_);
  return slots_.size();
}

size_t ResumeRegistry::parked() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [token, slot] : slots_) {
    n += slot.state == State::kParked ? 1 : 0;
  }
  return n;
}

}  // namespace ferry::agent
