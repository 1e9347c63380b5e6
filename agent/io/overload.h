// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Resource exhaustion on listeners (issue 17 point 5). When accept() fails because the process
// or the system is out of descriptors or memory, the pending connection stays queued and the
// listener stays readable: a level-triggered loop that retries at once spins and logs a line per
// try. Instead a listener pauses (AcceptBackoff: 50 ms doubling to 1 s, reset by the next
// accept that works), and with a reserve descriptor (FdReserve) it can still accept a pending
// connection to close it at once, or, for the admin endpoints, to answer it.

#include <algorithm>
#include <chrono>
#include <optional>

#include "backoff/backoff.h"

namespace ferry::agent {

enum class OverloadCause { kEmfile, kEnfile, kEnobufs, kEnomem };
inline constexpr int kOverloadCauses = 4;

// The cause behind an accept() errno, or nullopt when the error is not exhaustion.
std::optional<OverloadCause> overloadCause(int err);
const char* causeName(OverloadCause cause);  // "emfile", ...

// Exponential pause without jitter: each listener backs off on its own, so there is no herd.
class AcceptBackoff {
 public:
  static constexpr std::chrono::milliseconds kInitial{50};
  static constexpr std::chrono::milliseconds kMax{1000};

  explicit AcceptBackoff(std::chrono::milliseconds initial = kInitial,
                         std::chrono::milliseconds max = kMax)
      : backoff_({.initial = absl::FromChrono(initial),
                  .max = absl::FromChrono(max),
                  .multiplier = 2.0,
                  .jitter = 0.0}) {}
  // The pause to take now; the one after it is twice as long, up to the maximum.
  std::chrono::milliseconds next() { return absl::ToChronoMilliseconds(backoff_.next()); }
  void reset() { backoff_.reset(); }

 private:
  Backoff backoff_;
};

// One descriptor (/dev/null) kept open so that, when the process is out of descriptors, closing
// it frees exactly one slot for an accept. Not thread-safe: one per thread.
class FdReserve {
 public:
  FdReserve() = default;
  FdReserve(const FdReserve&) = delete;
  FdReserve& operator=(const FdReserve&) = delete;
  ~FdReserve() { release(); }

  // Opens the reserve if it is not held; false when that fails (still out of descriptors).
  bool hold();
  // Closes it: the next descriptor the process opens takes its slot.
  void release();
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Accepts one pending connection from `listener` with the reserve's slot and hands it to the
// caller (>= 0), then takes the reserve back once the caller closed it (the caller calls
// FdReserve::hold()). -1 when there is no reserve or nothing was pending (errno says why).
int acceptWithReserve(int listener, FdReserve& reserve, int flags);

}  // namespace ferry::agent
