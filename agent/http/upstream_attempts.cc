// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/upstream_attempts.h"

#include <utility>

namespace ferry::agent {

using routing::Outcome;

void UpstreamAttempts::begin(std::shared_ptr<BackendCluster> cluster, AttemptPolicy policy,
                             routing::RouteStats* stats) {
  cluster_ = std::move(cluster);
  policy_ = std::move(policy);
  stats_ = stats;
  tries_ = 0;
  status_ = 0;
  response_started_ = false;
  endpoint_.reset();
  cluster_->budget.requestStarted();
  budget_started_ = true;
  if (policy_.overall_timeout) {
    overall_timer_ = clock_.after(*policy_.overall_timeout, [this] { onOverallTimeout(); });
  }
}

void UpstreamAttempts::dispatch() {
  if (policy_.delay) {
    wait_timer_ = clock_.after(*policy_.delay, [this] {
      wait_timer_ = 0;
      startTry();
      io_.wake();
    });
    return;
  }
  startTry();
}

void UpstreamAttempts::startTry() {
  ++tries_;
  routing::PickFailure failure = routing::PickFailure::kNone;
  pick_ = cluster_->cluster.pick(rng_, clock_.now(), &failure);
  if (!pick_) {
    const bool overflow = failure == routing::PickFailure::kOverflow;
    if (overflow) {
      count(&routing::RouteStats::overflows);
    }
    releaseRetrySlot();
    io_.answer(503, overflow ? "upstream overflow (circuit breaker)\n" : "no healthy upstream\n",
               overflow ? "UO" : "UH");
    return;
  }
  endpoint_ = pick_->endpoint;
  // A connection (pooled or new) needs one of the cluster's slots (max_connections, counted
  // agent-wide).
  auto admission = cluster_->limiter.acquire(io_.grantCallback());
  switch (admission.admit) {
    case routing::ConnectionLimiter::Admit::kConnect:
      slot_ = std::make_unique<ConnectionSlot>(cluster_);
      connect();
      return;
    case routing::ConnectionLimiter::Admit::kWait:
      ticket_ = std::move(admission.ticket);  // granted() goes on
      return;
    case routing::ConnectionLimiter::Admit::kOverflow:
      count(&routing::RouteStats::overflows);
      io_.answer(503, "upstream overflow (circuit breaker)\n", "UO");
      return;
  }
}

bool UpstreamAttempts::granted() {
  if (ticket_ == nullptr || !cluster_->limiter.claim(ticket_)) {
    return false;  // a grant for a request that gave up (the slot went on) or already served
  }
  ticket_.reset();
  slot_ = std::make_unique<ConnectionSlot>(cluster_);
  connect();
  return true;
}

void UpstreamAttempts::connect() {
  status_ = 0;
  if (const char* error = io_.connect(pick_->endpoint)) {
    failTry(Outcome::kConnectFailure, std::nullopt, false, 503, error);
    return;
  }
  if (policy_.per_try_timeout) {
    try_timer_ = clock_.after(*policy_.per_try_timeout, [this] {
      try_timer_ = 0;
      failTry(Outcome::kTimeout, 504, true, 504, "upstream request timeout\n");
      io_.wake();
    });
  }
}

UpstreamAttempts::HeadVerdict UpstreamAttempts::responseHead(int status, bool keep_alive,
                                                             bool small_body, int grpc_status) {
  status_ = status;
  if (acquireRetry(status, true, grpc_status)) {
    const Outcome outcome = status >= 500 ? Outcome::kHttp5xx : Outcome::kSuccess;
    if (keep_alive && small_body) {
      draining_ = outcome;  // read on, drop the body, keep the connection, then retry
      return HeadVerdict::kDrain;
    }
    endTry(outcome, false);
    scheduleRetry();
    return HeadVerdict::kRetried;
  }
  response_started_ = true;
  return HeadVerdict::kForward;
}

bool UpstreamAttempts::responseComplete(bool reusable) {
  if (draining_) {
    finishDrain(reusable);
    return false;
  }
  endTry(status_ >= 500 ? Outcome::kHttp5xx : Outcome::kSuccess, reusable);
  return true;
}

// The retried response is over (read whole: `reusable`; or cut short): on to the retry.
void UpstreamAttempts::finishDrain(bool reusable) {
  const Outcome outcome = *draining_;
  draining_.reset();  // the retry-budget slot taken for it now goes to the retry
  endTry(outcome, reusable);
  scheduleRetry();
}

void UpstreamAttempts::upstreamGone(bool sent) {
  failTry(sent ? Outcome::kReset : Outcome::kConnectFailure, std::nullopt, sent, 503,
          "upstream connect error or disconnect/reset before headers\n");
}

void UpstreamAttempts::invalidResponse(const char* text) {
  failTry(Outcome::kReset, std::nullopt, true, 502, text);
}

// Whether the current failure may be retried; takes a budget slot when so.
bool UpstreamAttempts::acquireRetry(std::optional<int> status, bool sent, int grpc_status) {
  if (!io_.retriable()) {
    return false;
  }
  if (!routing::retryableGrpc(policy_.retry, tries_, grpc_status) &&
      !routing::retryable(policy_.retry, tries_, policy_.method, status, sent)) {
    return false;
  }
  if (!cluster_->budget.tryAcquireRetry()) {
    return false;
  }
  count(&routing::RouteStats::retries);
  return true;
}

void UpstreamAttempts::scheduleRetry() {
  retry_try_ = true;
  wait_timer_ = clock_.after(routing::backoff(policy_.retry, tries_, rng_), [this] {
    wait_timer_ = 0;
    startTry();
    io_.wake();
  });
}

void UpstreamAttempts::releaseRetrySlot() {
  if (retry_try_) {
    cluster_->budget.retryFinished();
    retry_try_ = false;
  }
}

// Ends the current try: outcome to the cluster, connection back to the pool or closed.
void UpstreamAttempts::endTry(Outcome outcome, bool reusable) {
  if (draining_) {
    // Ended otherwise (request timeout, client gone): the retry it was read for never comes.
    outcome = *draining_;
    draining_.reset();
    cluster_->budget.retryFinished();
  }
  if (ticket_ != nullptr) {
    cluster_->limiter.cancel(ticket_);  // still waiting: leave the queue
    ticket_.reset();
    outcome = Outcome::kSuccess;  // no connection yet: not the endpoint's doing
  }
  cancelTimer(try_timer_);
  if (pick_) {
    routing::Cluster& cluster = cluster_->cluster;
    const uint64_t before = cluster.ejectionsTotal();
    cluster.done(*pick_, outcome, clock_.now());
    const uint64_t ejected = cluster.ejectionsTotal() - before;
    if (ejected > 0 && stats_ != nullptr) {
      stats_->ejections.fetch_add(ejected, std::memory_order_relaxed);
    }
    pick_.reset();
  }
  releaseRetrySlot();
  io_.release(reusable);
  slot_.reset();  // to the first waiting request, if any
}

void UpstreamAttempts::failTry(Outcome outcome, std::optional<int> retry_status, bool sent,
                               int status, const char* text) {
  if (draining_) {
    finishDrain(false);  // the retry was decided already; only the connection is lost
    return;
  }
  const bool started = response_started_;
  const bool retry = !started && acquireRetry(retry_status, sent);
  endTry(outcome, false);
  if (started) {
    io_.reset();  // part of the response went out: only a reset tells the client
    return;
  }
  if (retry) {
    scheduleRetry();
    return;
  }
  if (outcome == Outcome::kTimeout) {
    count(&routing::RouteStats::timeouts);
  }
  io_.answer(status, text,
             outcome == Outcome::kConnectFailure ? "UF"
             : outcome == Outcome::kTimeout      ? "UT"
             : status == 502                     ? "UPE"
                                                 : "UC");
}

void UpstreamAttempts::onOverallTimeout() {
  overall_timer_ = 0;
  count(&routing::RouteStats::timeouts);
  const bool started = response_started_;
  endTry(Outcome::kTimeout, false);
  cancelTimer(wait_timer_);
  if (started) {
    io_.reset();
  } else {
    io_.answer(504, "upstream request timeout\n", "UT");
  }
  io_.wake();
}

void UpstreamAttempts::finish() {
  cancelTimer(overall_timer_);
  cancelTimer(try_timer_);
  cancelTimer(wait_timer_);
  if (cluster_ == nullptr) {
    return;
  }
  endTry(Outcome::kSuccess, false);  // no-op unless a try is still open
  if (budget_started_) {
    cluster_->budget.requestFinished();
    budget_started_ = false;
  }
}

void UpstreamAttempts::count(std::atomic<uint64_t> routing::RouteStats::*field) {
  if (stats_ != nullptr) {
    (stats_->*field).fetch_add(1, std::memory_order_relaxed);
  }
}

void UpstreamAttempts::cancelTimer(AttemptClock::TimerId& id) {
  if (id != 0) {
    clock_.cancel(id);
    id = 0;
  }
}

}  // namespace ferry::agent
