// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The upstream side of one routed request (issue 20 point 2), as a state machine driven by
// events and an injected clock: tries, the per-try (backendRequest) and overall (request)
// timeouts, retries on the rule's conditions within the backend's retry budget with jittered
// backoff, the fault delay before the first try, the endpoint pick and connection slot of each
// try, and each try's outcome reported to the cluster (outlier detection). It owns no socket:
// AttemptIo (the routed outbound's I/O, or a fake in tests) opens and releases connections and
// answers the client; AttemptClock (the worker's event loop, or a fake clock) keeps time.
//
// A failed try is retried only while AttemptIo::retriable() (the request is buffered whole),
// the policy allows it (routing::retryable: the status, the method, whether anything was sent)
// and the budget has room. A response that will be retried is read to its end when small and
// keep-alive (the connection is kept; draining()), else its connection is closed; either way
// the try's outcome is reported once. Once a response has started towards the client, a failure
// can only reset it.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"
#include "agent/state/route_state.h"
#include "routing/routing.h"

namespace ferry::agent {

class AttemptClock {
 public:
  using TimerId = uint64_t;  // 0: none
  virtual ~AttemptClock() = default;
  virtual absl::Time now() = 0;
  virtual TimerId after(absl::Duration wait, std::function<void()> fn) = 0;
  virtual void cancel(TimerId id) = 0;
};

class AttemptIo {
 public:
  virtual ~AttemptIo() = default;
  // A connection slot is held for `endpoint`: take or open a connection and send the request.
  // Returns null, or the text of a 503 when no connection could be had (a connect failure).
  virtual const char* connect(const routing::EndpointRef& endpoint) = 0;
  // The try is over: its connection (if any) goes back to the pool when `reusable`, else closes.
  virtual void release(bool reusable) = 0;
  // Answers the client here (no response started) and ends the request.
  virtual void answer(int status, std::string_view text, const char* flags) = 0;
  // A response had started: the client connection is reset.
  virtual void reset() = 0;
  // Whether a failed try may be tried again (the request is buffered whole, the client there).
  virtual bool retriable() const = 0;
  // Called by the limiter on whichever thread frees a slot: must pass the news on to granted().
  virtual std::function<void()> grantCallback() = 0;
  // A timer changed state: bytes may wait for the client.
  virtual void wake() = 0;
};

// What the attempts need of the matched rule and the request.
struct AttemptPolicy {
  routing::RetryPolicy retry;
  std::optional<absl::Duration> per_try_timeout, overall_timeout, delay;
  std::string_view method;  // must outlive the request (the caller's copy)
};

class UpstreamAttempts {
 public:
  enum class HeadVerdict {
    kForward,  // the response goes to the client
    kDrain,    // read it to its end and throw it away (responseComplete() then retries)
    kRetried,  // the try is over (its connection closed) and a retry is scheduled
  };

  UpstreamAttempts(AttemptClock& clock, AttemptIo& io, absl::BitGenRef rng)
      : clock_(clock), io_(io), rng_(rng) {}
  UpstreamAttempts(const UpstreamAttempts&) = delete;
  UpstreamAttempts& operator=(const UpstreamAttempts&) = delete;

  // A new request for `cluster`: counts it in the retry budget, starts the overall timeout.
  void begin(std::shared_ptr<BackendCluster> cluster, AttemptPolicy policy,
             routing::RouteStats* stats);
  // The first try (after the fault delay, if any).
  void dispatch();
  // A connection slot this request waited for was handed over. False when the grant came for
  // no waiting try (it gave up, or was served): nothing changed.
  bool granted();

  // Events of the current try's response. `grpc_status`: of a trailers-only gRPC answer (its
  // head holds grpc-status), else -1; retried when the policy lists it (routing::retryableGrpc).
  HeadVerdict responseHead(int status, bool keep_alive, bool small_body, int grpc_status = -1);
  // The response ended (`reusable`: its connection may carry another). True when the request is
  // over; false when it was drained for a retry.
  bool responseComplete(bool reusable);
  // A drained response is too big to read on: its connection closes, the retry goes ahead.
  void abandonDrain() { finishDrain(false); }
  // The connection closed or failed before the response ended; `sent`: the backend may have
  // received the request.
  void upstreamGone(bool sent);
  // The response cannot be parsed or is not allowed here: a 502 (or a reset).
  void invalidResponse(const char* text);

  // The request is over (answered, or the client gone): timers stop, the try ends (no fault of
  // the endpoint), the budget forgets the request. Harmless when nothing is in progress; the
  // owner calls it before destroying the attempts.
  void finish();

  bool draining() const { return draining_.has_value(); }
  bool waitingForSlot() const { return ticket_ != nullptr; }
  uint32_t tries() const { return tries_; }
  // The endpoint of the last try (kept after finish(), for the report).
  const std::optional<routing::EndpointRef>& endpoint() const { return endpoint_; }

 private:
  void startTry();
  void connect();
  bool acquireRetry(std::optional<int> status, bool sent, int grpc_status = -1);
  void scheduleRetry();
  void releaseRetrySlot();
  void endTry(routing::Outcome outcome, bool reusable);
  void finishDrain(bool reusable);
  void failTry(routing::Outcome outcome, std::optional<int> retry_status, bool sent, int status,
               const char* text);
  void onOverallTimeout();
  void count(std::atomic<uint64_t> routing::RouteStats::*field);
  void cancelTimer(AttemptClock::TimerId& id);

  AttemptClock& clock_;
  AttemptIo& io_;
  absl::BitGenRef rng_;
  std::shared_ptr<BackendCluster> cluster_;
  AttemptPolicy policy_;
  routing::RouteStats* stats_ = nullptr;
  bool budget_started_ = false;
  uint32_t tries_ = 0;
  AttemptClock::TimerId overall_timer_ = 0, try_timer_ = 0, wait_timer_ = 0;
  // The current try.
  std::optional<routing::Cluster::Pick> pick_;
  routing::ConnectionLimiter::Ticket ticket_;  // waiting for a connection slot
  std::unique_ptr<ConnectionSlot> slot_;       // while this try has a connection
  bool retry_try_ = false;                     // holds a retry-budget slot
  int status_ = 0;                             // of the response head
  bool response_started_ = false;              // the final response head went to the client
  std::optional<routing::Outcome> draining_;   // a response read for a retry: the try's outcome
  std::optional<routing::EndpointRef> endpoint_;
};

}  // namespace ferry::agent
