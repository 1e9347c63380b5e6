// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// UpstreamAttempts, the routed outbound's try/retry/timeout state machine (issue 20 point 2), on
// a fake clock with a fake I/O side: no socket, no thread, no sleep. Each case drives one
// request through its events and checks what the machine asked of the I/O (connections opened
// and released, the client's answer), the route's counters and the cluster's view of each try.
#include "agent/http/upstream_attempts.h"

#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace ferry::agent {
namespace {

using Verdict = UpstreamAttempts::HeadVerdict;

class FakeClock : public AttemptClock {
 public:
  absl::Time now() override { return now_; }
  TimerId after(absl::Duration wait, std::function<void()> fn) override {
    timers_[next_] = {now_ + wait, std::move(fn)};
    return next_++;
  }
  void cancel(TimerId id) override { timers_.erase(id); }
  // Moves time on by `d`, firing due timers in time order.
  void advance(absl::Duration d) {
    const absl::Time until = now_ + d;
    while (true) {
      auto due = timers_.end();
      for (auto it = timers_.begin(); it != timers_.end(); ++it) {
        if (it->second.first <= until &&
            (due == timers_.end() || it->second.first < due->second.first)) {
          due = it;
        }
      }
      if (due == timers_.end()) {
        break;
      }
      now_ = due->second.first;
      auto fn = std::move(due->second.second);
      timers_.erase(due);
      fn();
    }
    now_ = until;
  }
  size_t pending() const { return timers_.size(); }

 private:
  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
  TimerId next_ = 1;
  std::map<TimerId, std::pair<absl::Time, std::function<void()>>> timers_;
};

struct Answer {
  int status = 0;
  std::string text, flags;
};

class FakeIo : public AttemptIo {
 public:
  const char* connect(const routing::EndpointRef& endpoint) override {
    connects.push_back(endpoint.ip);
    open = true;
    return connect_error;
  }
  void release(bool reusable) override {
    if (open) {
      releases.push_back(reusable);
      open = false;
    }
  }
  void answer(int status, std::string_view text, const char* flags) override {
    answers.push_back({status, std::string(text), flags});
    if (attempts != nullptr) {
      attempts->finish();  // as the outbound does: the answer ends the request
    }
  }
  void reset() override {
    ++resets;
    if (attempts != nullptr) {
      attempts->finish();
    }
  }
  bool retriable() const override { return buffered; }
  std::function<void()> grantCallback() override {
    return [this] { ++grants; };
  }
  void wake() override { ++wakes; }

  UpstreamAttempts* attempts = nullptr;
  const char* connect_error = nullptr;
  bool buffered = true;
  bool open = false;
  std::vector<std::string> connects;
  std::vector<bool> releases;
  std::vector<Answer> answers;
  int resets = 0, grants = 0, wakes = 0;
};

routing::ClusterOptions options(uint32_t consecutive_errors = 5) {
  routing::ClusterOptions o;
  o.consecutive_errors = consecutive_errors;
  o.max_ejection_percent = 50;
  o.base_ejection = absl::Seconds(30);
  return o;
}

struct Rig {
  explicit Rig(std::vector<std::string> ips = {"10.0.0.1"}, routing::ClusterOptions o = options()) {
    std::vector<routing::EndpointRef> eps;
    for (const std::string& ip : ips) {
      eps.push_back({.ip = ip, .port = 8080});
    }
    cluster = std::make_shared<BackendCluster>(eps, o);
    io.attempts = &attempts;
  }
  // A GET with `attempts` retries on 503/504, 10 ms backoff, and the given timeouts.
  void begin(uint32_t retries, std::optional<absl::Duration> per_try = std::nullopt,
             std::optional<absl::Duration> overall = std::nullopt,
             std::string_view method = "GET") {
    AttemptPolicy p;
    p.retry.attempts = retries;
    p.retry.status_codes = {503, 504};
    p.retry.base_backoff = absl::Milliseconds(10);
    p.retry.max_backoff = absl::Milliseconds(10);
    p.per_try_timeout = per_try;
    p.overall_timeout = overall;
    p.method = method;
    attempts.begin(cluster, p, &stats);
  }
  uint32_t errorsOf(const std::string& ip) {
    for (const routing::EndpointStatus& s : cluster->cluster.status(clock.now())) {
      if (s.endpoint.ip == ip) {
        return s.consecutive_errors;
      }
    }
    FAIL("no endpoint " << ip);
    return 0;
  }

  FakeClock clock;
  FakeIo io;
  std::mt19937 rng{1};
  UpstreamAttempts attempts{clock, io, rng};
  std::shared_ptr<BackendCluster> cluster;
  routing::RouteStats stats;
};

TEST_CASE("attempts: success on the first try", "[agent][routing][attempts]") {
  Rig r;
  r.begin(2);
  r.attempts.dispatch();
  REQUIRE(r.io.connects.size() == 1);
  CHECK(r.attempts.responseHead(200, true, true) == Verdict::kForward);
  CHECK(r.attempts.responseComplete(true));
  CHECK(r.io.releases == std::vector<bool>{true});  // the connection goes back to the pool
  r.attempts.finish();
  CHECK(r.io.answers.empty());
  CHECK(r.stats.retries == 0);
  CHECK(r.cluster->cluster.activeRequests() == 0);
  CHECK(r.cluster->limiter.connections() == 0);  // the slot was given back
  CHECK(r.clock.pending() == 0);
}

TEST_CASE("attempts: a 503 is drained and retried after the backoff, then succeeds",
          "[agent][routing][attempts]") {
  Rig r;
  r.begin(2);
  r.attempts.dispatch();
  CHECK(r.attempts.responseHead(503, true, true) == Verdict::kDrain);
  CHECK(r.attempts.draining());
  CHECK_FALSE(r.attempts.responseComplete(true));  // drained whole: kept, retry scheduled
  CHECK(r.io.releases == std::vector<bool>{true});
  CHECK(r.errorsOf("10.0.0.1") == 1);  // the 503 counted against the endpoint
  CHECK(r.io.connects.size() == 1);    // not before the backoff
  r.clock.advance(absl::Milliseconds(10));
  REQUIRE(r.io.connects.size() == 2);
  CHECK(r.io.wakes == 1);
  CHECK(r.attempts.responseHead(200, true, true) == Verdict::kForward);
  CHECK(r.attempts.responseComplete(true));
  CHECK(r.errorsOf("10.0.0.1") == 0);
  r.attempts.finish();
  CHECK(r.stats.retries == 1);
  CHECK(r.attempts.tries() == 2);
  CHECK(r.io.answers.empty());
  CHECK(r.cluster->budget.activeRetries() == 0);
}

TEST_CASE("attempts: a big or closing 503 is not drained: its connection closes, then retry",
          "[agent][routing][attempts]") {
  Rig r;
  r.begin(1);
  r.attempts.dispatch();
  CHECK(r.attempts.responseHead(503, true, /*small_body=*/false) == Verdict::kRetried);
  CHECK(r.io.releases == std::vector<bool>{false});
  r.clock.advance(absl::Milliseconds(10));
  CHECK(r.io.connects.size() == 2);
  // Out of retries: the second 503 goes to the client as it is.
  CHECK(r.attempts.responseHead(503, true, true) == Verdict::kForward);
  CHECK(r.attempts.responseComplete(true));
  r.attempts.finish();
  CHECK(r.stats.retries == 1);
  CHECK(r.errorsOf("10.0.0.1") == 2);
}

TEST_CASE("attempts: a per-try timeout is retried, the retry answers",
          "[agent][routing][attempts]") {
  Rig r;
  r.begin(1, absl::Milliseconds(100));
  r.attempts.dispatch();
  r.clock.advance(absl::Milliseconds(99));
  CHECK(r.io.releases.empty());
  r.clock.advance(absl::Milliseconds(1));
  CHECK(r.io.releases == std::vector<bool>{false});  // the hung connection is closed
  CHECK(r.io.answers.empty());
  CHECK(r.errorsOf("10.0.0.1") == 1);  // a timeout is a failure for outlier detection
  r.clock.advance(absl::Milliseconds(10));
  REQUIRE(r.io.connects.size() == 2);
  CHECK(r.attempts.responseHead(200, true, true) == Verdict::kForward);
  CHECK(r.attempts.responseComplete(false));
  r.attempts.finish();
  CHECK(r.stats.retries == 1);
  CHECK(r.stats.timeouts == 0);  // counted only when the client gets the 504
}

TEST_CASE("attempts: the overall timeout wins over per-try timeouts and retries",
          "[agent][routing][attempts]") {
  Rig r;
  r.begin(5, absl::Milliseconds(200), absl::Milliseconds(300));
  r.attempts.dispatch();
  r.clock.advance(absl::Milliseconds(210));  // try 1 timed out, try 2 started at 210
  CHECK(r.io.connects.size() == 2);
  CHECK(r.io.answers.empty());
  r.clock.advance(absl::Milliseconds(90));  // 300: the request's timeout
  REQUIRE(r.io.answers.size() == 1);
  CHECK(r.io.answers[0].status == 504);
  CHECK(r.io.answers[0].flags == "UT");
  CHECK(r.io.releases == std::vector<bool>{false, false});
  CHECK(r.stats.timeouts == 1);
  CHECK(r.clock.pending() == 0);  // no try or retry left behind
  r.clock.advance(absl::Seconds(5));
  CHECK(r.io.connects.size() == 2);
}

TEST_CASE("attempts: once the response started, a failure resets the client",
          "[agent][routing][attempts]") {
  Rig r;
  r.begin(3, std::nullopt, absl::Milliseconds(300));
  r.attempts.dispatch();
  CHECK(r.attempts.responseHead(200, true, false) == Verdict::kForward);
  r.attempts.upstreamGone(true);
  CHECK(r.io.resets == 1);
  CHECK(r.io.answers.empty());
  CHECK(r.io.connects.size() == 1);
  CHECK(r.errorsOf("10.0.0.1") == 1);
}

TEST_CASE("attempts: the retry budget exhausted, the 503 goes to the client",
          "[agent][routing][attempts]") {
  Rig r;
  // Three retries in flight elsewhere take the budget's floor (min_concurrency 3).
  for (int i = 0; i < 3; ++i) {
    REQUIRE(r.cluster->budget.tryAcquireRetry());
  }
  r.begin(2);
  r.attempts.dispatch();
  CHECK(r.attempts.responseHead(503, true, true) == Verdict::kForward);
  CHECK(r.attempts.responseComplete(true));
  r.attempts.finish();
  CHECK(r.stats.retries == 0);
  CHECK(r.cluster->budget.exhaustedTotal() == 1);
  CHECK(r.io.connects.size() == 1);
}

TEST_CASE("attempts: what may not be retried", "[agent][routing][attempts]") {
  SECTION("a POST's 503 (not idempotent)") {
    Rig r;
    r.begin(2, std::nullopt, std::nullopt, "POST");
    r.attempts.dispatch();
    CHECK(r.attempts.responseHead(503, true, true) == Verdict::kForward);
    CHECK(r.stats.retries == 0);
  }
  SECTION("a POST whose connection failed before sending anything is retried") {
    Rig r;
    r.begin(2, std::nullopt, std::nullopt, "POST");
    r.attempts.dispatch();
    r.attempts.upstreamGone(false);
    CHECK(r.io.answers.empty());
    r.clock.advance(absl::Milliseconds(10));
    CHECK(r.io.connects.size() == 2);
    CHECK(r.stats.retries == 1);
  }
  SECTION("a POST reset after it was sent: 503 UC") {
    Rig r;
    r.begin(2, std::nullopt, std::nullopt, "POST");
    r.attempts.dispatch();
    r.attempts.upstreamGone(true);
    REQUIRE(r.io.answers.size() == 1);
    CHECK(r.io.answers[0].status == 503);
    CHECK(r.io.answers[0].flags == "UC");
  }
  SECTION("a body too big to buffer (streamed): one try only") {
    Rig r;
    r.io.buffered = false;
    r.begin(2);
    r.attempts.dispatch();
    r.attempts.upstreamGone(false);
    REQUIRE(r.io.answers.size() == 1);
    CHECK(r.io.answers[0].status == 503);
    CHECK(r.io.answers[0].flags == "UF");
    CHECK(r.io.connects.size() == 1);
  }
  SECTION("no connection could be had: 503 UF with its text") {
    Rig r;
    r.io.connect_error = "upstream connect error\n";
    r.begin(0);
    r.attempts.dispatch();
    REQUIRE(r.io.answers.size() == 1);
    CHECK(r.io.answers[0].text == "upstream connect error\n");
    CHECK(r.io.answers[0].flags == "UF");
  }
  SECTION("an invalid response: 502 UPE") {
    Rig r;
    r.begin(0);
    r.attempts.dispatch();
    r.attempts.invalidResponse("invalid response from upstream\n");
    REQUIRE(r.io.answers.size() == 1);
    CHECK(r.io.answers[0].status == 502);
    CHECK(r.io.answers[0].flags == "UPE");
  }
}

TEST_CASE("attempts: each try's outcome reaches outlier detection, which ejects",
          "[agent][routing][attempts]") {
  // Two endpoints, ejected after one error; a retry then goes to the other one.
  Rig r({"10.0.0.1", "10.0.0.2"}, options(/*consecutive_errors=*/1));
  r.begin(3);
  r.attempts.dispatch();
  REQUIRE(r.io.connects.size() == 1);
  const std::string first = r.io.connects[0];
  const std::string second = first == "10.0.0.1" ? "10.0.0.2" : "10.0.0.1";
  CHECK(r.attempts.responseHead(503, true, true) == Verdict::kDrain);
  CHECK_FALSE(r.attempts.responseComplete(true));
  CHECK(r.stats.ejections == 1);
  r.clock.advance(absl::Milliseconds(10));
  REQUIRE(r.io.connects.size() == 2);
  CHECK(r.io.connects[1] == second);  // the ejected endpoint is not picked
  REQUIRE(r.attempts.endpoint().has_value());
  CHECK(r.attempts.endpoint()->ip == second);
  r.attempts.upstreamGone(false);  // a connect failure: an error for `second` too
  CHECK(r.errorsOf(second) == 1);
  // Both ejected would be 100% > max_ejection_percent 50: the second stays in.
  CHECK(r.stats.ejections == 1);
  r.clock.advance(absl::Milliseconds(10));
  REQUIRE(r.io.connects.size() == 3);
  CHECK(r.io.connects[2] == second);
  CHECK(r.attempts.responseHead(200, true, true) == Verdict::kForward);
  CHECK(r.attempts.responseComplete(true));
  CHECK(r.errorsOf(second) == 0);  // success resets the run
  r.attempts.finish();
}

TEST_CASE("attempts: waiting for a connection slot, the fault delay, the client leaving",
          "[agent][routing][attempts]") {
  routing::ClusterOptions o = options();
  o.max_connections = 1;
  o.max_pending_requests = 1;
  Rig r({"10.0.0.1"}, o);
  REQUIRE(r.cluster->limiter.acquire(nullptr).admit ==
          routing::ConnectionLimiter::Admit::kConnect);  // the only slot is taken
  SECTION("the slot is handed over: the try goes on") {
    r.begin(0);
    r.attempts.dispatch();
    CHECK(r.attempts.waitingForSlot());
    CHECK(r.io.connects.empty());
    r.cluster->limiter.release();
    CHECK(r.io.grants == 1);
    CHECK(r.attempts.granted());
    CHECK(r.io.connects.size() == 1);
    CHECK_FALSE(r.attempts.granted());  // a second grant changes nothing
    r.attempts.finish();
    CHECK(r.cluster->limiter.connections() == 0);
  }
  SECTION("the client leaves while waiting: the queue is left, no outcome counted") {
    r.begin(0);
    r.attempts.dispatch();
    r.attempts.finish();
    CHECK_FALSE(r.attempts.waitingForSlot());
    CHECK(r.cluster->limiter.waiting() == 0);
    CHECK(r.errorsOf("10.0.0.1") == 0);
    CHECK(r.cluster->cluster.activeRequests() == 0);
  }
  SECTION("a second waiter overflows: 503 UO") {
    REQUIRE(r.cluster->limiter.acquire(nullptr).admit == routing::ConnectionLimiter::Admit::kWait);
    r.begin(0);
    r.attempts.dispatch();
    REQUIRE(r.io.answers.size() == 1);
    CHECK(r.io.answers[0].status == 503);
    CHECK(r.io.answers[0].flags == "UO");
    CHECK(r.stats.overflows == 1);
  }
  SECTION("a fault delay holds the first try") {
    r.cluster->limiter.release();
    AttemptPolicy p;
    p.delay = absl::Milliseconds(250);
    p.method = "GET";
    r.attempts.begin(r.cluster, p, &r.stats);
    r.attempts.dispatch();
    r.clock.advance(absl::Milliseconds(249));
    CHECK(r.io.connects.empty());
    r.clock.advance(absl::Milliseconds(1));
    CHECK(r.io.connects.size() == 1);
    r.attempts.finish();
  }
}

}  // namespace
}  // namespace ferry::agent

namespace ferry::agent {
namespace {

TEST_CASE("attempts: a trailers-only gRPC answer is retried by grpc-status, POST too",
          "[agent][routing][attempts][grpc]") {
  struct Row {
    std::vector<uint32_t> retry_on;
    int grpc_status;
    bool retried;
  };
  const Row rows[] = {
      {{14}, 14, true},    // UNAVAILABLE listed
      {{14, 8}, 8, true},  // RESOURCE_EXHAUSTED listed
      {{14}, 3, false},    // INVALID_ARGUMENT: not listed
      {{14}, 0, false},    // OK
      {{}, 14, false},     // nothing listed: HTTP 200 is no retry condition either
      {{14}, -1, false},   // not a trailers-only answer
  };
  for (const Row& row : rows) {
    INFO("grpc-status " << row.grpc_status << ", listed " << row.retry_on.size());
    Rig r;
    AttemptPolicy p;
    p.retry.attempts = 2;
    p.retry.grpc_statuses = row.retry_on;
    p.retry.base_backoff = absl::Milliseconds(10);
    p.method = "POST";
    r.attempts.begin(r.cluster, p, &r.stats);
    r.attempts.dispatch();
    const Verdict v = r.attempts.responseHead(200, false, false, row.grpc_status);
    CHECK(v == (row.retried ? Verdict::kRetried : Verdict::kForward));
    if (row.retried) {
      r.clock.advance(absl::Milliseconds(10));
      CHECK(r.io.connects.size() == 2);
      CHECK(r.attempts.responseHead(200, false, false, 0) == Verdict::kForward);
    }
    CHECK(r.attempts.responseComplete(true));
    r.attempts.finish();
    CHECK(r.stats.retries == (row.retried ? 1u : 0u));
    CHECK(r.io.answers.empty());
  }
}

TEST_CASE("attempts: gRPC retries stop after the policy's attempts",
          "[agent][routing][attempts][grpc]") {
  Rig r;
  AttemptPolicy p;
  p.retry.attempts = 2;
  p.retry.grpc_statuses = {14};
  p.retry.base_backoff = absl::Milliseconds(10);
  p.method = "POST";
  r.attempts.begin(r.cluster, p, &r.stats);
  r.attempts.dispatch();
  CHECK(r.attempts.responseHead(200, false, false, 14) == Verdict::kRetried);
  r.clock.advance(absl::Milliseconds(20));
  CHECK(r.attempts.responseHead(200, false, false, 14) == Verdict::kRetried);
  r.clock.advance(absl::Milliseconds(40));
  CHECK(r.io.connects.size() == 3);
  // The third UNAVAILABLE goes to the client as it is.
  CHECK(r.attempts.responseHead(200, false, false, 14) == Verdict::kForward);
  CHECK(r.attempts.responseComplete(true));
  r.attempts.finish();
  CHECK(r.stats.retries == 2);
}

}  // namespace
}  // namespace ferry::agent
