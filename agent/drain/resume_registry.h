// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The destination agent's table of resumable streams, by resume token (docs/upgrades.md). One
// per agent, shared by its workers: a resume CONNECT may arrive on any worker.
//
// A stream's entry goes through: attached (its bridge runs on a live HBONE connection) ->
// parked (the client side went away to be handed over: the stream's app socket and state wait
// here for the resume until a deadline) -> attached again on a resume (the state leaves with the
// answer, to the worker that took the resume), or expired (its app socket is reset); handed over
// (given to a successor agent: a resume still arriving here is told to retry, the successor has
// it); removed when the stream ends.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/drain/stream_state.h"
#include "hbone/resume.h"

namespace ferry::agent {

class ResumeRegistry {
 public:
  using Clock = std::chrono::steady_clock;
  struct Answer {
    int status = 0;                      // 200, or kResumeUnknown / kResumeRetry / 403 / 400
    std::optional<HandedStream> stream;  // with 200: the parked stream, to continue
  };

  ResumeRegistry() = default;
  ResumeRegistry(const ResumeRegistry&) = delete;
  ResumeRegistry& operator=(const ResumeRegistry&) = delete;
  ~ResumeRegistry();  // resets the app sockets of streams still parked

  // A stream whose offer was accepted. False when the token is already taken (a client that
  // reuses a token gets no resumable stream). An attached stream costs its token and a few
  // words: its binding is recorded when it parks or is handed over (from the stream's state).
  bool add(const hbone::ResumeToken& token);
  void remove(const hbone::ResumeToken& token);
  // Parks a stream until `deadline`, bound to its recorded peer and authority: one of ours whose
  // client side went to be handed over, or one a predecessor handed us. False (the caller resets
  // the socket) for a peer that is not a SPIFFE ID.
  bool park(HandedStream stream, Clock::time_point deadline);
  // Given to the successor agent (bound to the stream's peer and authority, for the answers
  // to resumes still reaching this agent).
  void handedOver(const HandedStream& stream);

  // A resume CONNECT. 200 only for the bound identity and authority and a parked stream, which
  // is then attached again and returned; 403 / 400 for another identity / authority. An unknown
  // token is 410, unless this agent is still receiving streams from a predecessor
  // (`expecting_more`): then 503 retry, as for a stream this agent handed over or one still
  // attached (its client side's suspension is on its way).
  Answer resume(const hbone::ResumeToken& token, const tls::SpiffeId& peer,
                std::string_view authority, bool expecting_more);

  // Parked streams past their deadline, removed: their app sockets are the caller's to reset.
  std::vector<HandedStream> expire(Clock::time_point now);
  // Every parked stream, for a successor; their tokens stay here as handed over.
  std::vector<HandedStream> handOverParked();
  size_t size() const;
  size_t parked() const;

 private:
  enum class State { kAttached, kParked, kHandedOver };
  struct Bound {
    hbone::ResumeBinding binding;
    std::optional<HandedStream> stream;  // while parked
  };
  struct Slot {
    State state = State::kAttached;
    Clock::time_point deadline{};
    std::unique_ptr<Bound> bound;  // parked or handed over
  };
  static std::unique_ptr<Bound> bind(const HandedStream& stream);
  mutable std::mutex mu_;
  absl::flat_hash_map<hbone::ResumeToken, Slot> slots_;
};

}  // namespace ferry::agent
