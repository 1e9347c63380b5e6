// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The destination agent's table of resumable streams, by resume token (docs/upgrades.md). One
// per agent, shared by its workers: a resume CONNECT may arrive on any worker, while the
// stream lives on the one that accepted it (`worker`, `handle` say where).
//
// A stream's entry goes through: attached (on a live HBONE connection) -> suspended (its
// connection was lost or detached; waits for a resume until a deadline) -> attached again on a
// resume, or expired; handed over (given to a successor agent: a resume still arriving here is
// told to retry, the successor has it) ; removed when the stream ends.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "hbone/resume.h"

namespace ferry::agent {

class ResumeRegistry {
 public:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    hbone::ResumeBinding binding;
    int worker = 0;
    uint64_t handle = 0;  // the worker's name for the stream
  };
  struct Answer {
    int status = 0;              // 200, or kResumeUnknown / kResumeRetry / 403 / 400
    std::optional<Entry> entry;  // with 200: the stream to move onto the new connection
  };

  // A stream whose offer was accepted. False when the token is already taken (a client that
  // reuses a token gets no resumable stream).
  bool add(const hbone::ResumeToken& token, Entry entry);
  void remove(const hbone::ResumeToken& token);
  // Its connection is gone: resumable until `deadline`.
  void suspend(const hbone::ResumeToken& token, Clock::time_point deadline);
  // Given to the successor agent.
  void handedOver(const hbone::ResumeToken& token);

  // A resume CONNECT. 200 only for the bound identity and authority; the entry is then attached
  // (to be moved onto the new connection by its worker). An unknown token is 410, unless this
  // agent is still receiving streams from a predecessor (`expecting_more`): then 503 retry, as
  // for a stream this agent handed over.
  Answer resume(const hbone::ResumeToken& token, const tls::SpiffeId& peer,
                std::string_view authority, bool expecting_more);

  // Suspended streams past their deadline, removed: their app sockets are to be reset.
  std::vector<Entry> expire(Clock::time_point now);
  size_t size() const;

 private:
  enum class State { kAttached, kSuspended, kHandedOver };
  struct Slot {
    Entry entry;
    State state = State::kAttached;
    Clock::time_point deadline{};
  };
  mutable std::mutex mu_;
  absl::flat_hash_map<hbone::ResumeToken, Slot> slots_;
};

}  // namespace ferry::agent
