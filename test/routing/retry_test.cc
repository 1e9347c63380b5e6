// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>
#include <random>

#include "routing/retry.h"

namespace ferry::routing {
namespace {

TEST_CASE("retryable: codes, tries, idempotency and what was sent", "[routing]") {
  RetryPolicy policy{.attempts = 2, .status_codes = {503, 502}};
  struct Row {
    const char* why;
    uint32_t tries_done;
    const char* method;
    std::optional<int> status;
    bool sent;
    bool want;
  };
  std::vector<Row> rows = {
      {"listed code, GET", 1, "GET", 503, true, true},
      {"second retry allowed", 2, "GET", 502, true, true},
      {"attempts used up", 3, "GET", 503, true, false},
      {"code not listed", 1, "GET", 500, true, false},
      {"success is not retried", 1, "GET", 200, true, false},
      {"PUT is idempotent", 1, "PUT", 503, true, true},
      {"DELETE is idempotent", 1, "DELETE", 503, true, true},
      {"HEAD is idempotent", 1, "HEAD", 503, true, true},
      {"OPTIONS is idempotent", 1, "OPTIONS", 503, true, true},
      {"TRACE is idempotent", 1, "TRACE", 503, true, true},
      {"POST once sent: never", 1, "POST", 503, true, false},
      {"PATCH once sent: never", 1, "PATCH", 503, true, false},
      {"methods are case-sensitive", 1, "get", 503, true, false},
      {"connect failure, nothing sent, POST", 1, "POST", std::nullopt, false, true},
      {"connect failure, nothing sent, GET", 2, "GET", std::nullopt, false, true},
      {"connect failure past attempts", 3, "GET", std::nullopt, false, false},
      {"reset after the request was sent", 1, "GET", std::nullopt, true, false},
      {"no tries done", 0, "GET", 503, true, false},
  };
  for (const Row& row : rows) {
    INFO(row.why);
    CHECK(retryable(policy, row.tries_done, row.method, row.status, row.sent) == row.want);
  }
  CHECK_FALSE(retryable(RetryPolicy{}, 1, "GET", std::nullopt, false));  // no retries configured
}

TEST_CASE("backoff is full-jitter exponential and capped", "[routing]") {
  RetryPolicy policy{.base_backoff = absl::Milliseconds(25),
                     .max_backoff = absl::Milliseconds(250)};
  std::mt19937_64 rng(9);
  struct Row {
    uint32_t retry;
    absl::Duration cap;
  };
  for (Row row : {Row{1, absl::Milliseconds(25)}, Row{2, absl::Milliseconds(50)},
                  Row{3, absl::Milliseconds(100)}, Row{4, absl::Milliseconds(200)},
                  Row{5, absl::Milliseconds(250)}, Row{60, absl::Milliseconds(250)}}) {
    INFO("retry " << row.retry);
    absl::Duration longest = absl::ZeroDuration();
    absl::Duration shortest = absl::InfiniteDuration();
    for (int i = 0; i < 2000; ++i) {
      absl::Duration d = backoff(policy, row.retry, rng);
      REQUIRE(d >= absl::ZeroDuration());
      REQUIRE(d <= row.cap);
      longest = std::max(longest, d);
      shortest = std::min(shortest, d);
    }
    // Full jitter: the draws cover the whole range, not just near the cap.
    CHECK(longest > row.cap * 0.9);
    CHECK(shortest < row.cap * 0.1);
  }
  CHECK(backoff(policy, 0, rng) == absl::ZeroDuration());
  CHECK(backoff(RetryPolicy{.base_backoff = absl::ZeroDuration()}, 3, rng) == absl::ZeroDuration());
}

TEST_CASE("the retry budget stops a storm of 100 failing requests", "[routing]") {
  RetryBudget budget(0.2, 3);
  CHECK(budget.limit() == 3);  // idle: the minimum
  for (int i = 0; i < 100; ++i) {
    budget.requestStarted();
  }
  CHECK(budget.limit() == 20);
  // Every request fails at once and asks to retry.
  int granted = 0;
  for (int i = 0; i < 100; ++i) {
    granted += budget.tryAcquireRetry() ? 1 : 0;
  }
  CHECK(granted == 20);
  CHECK(budget.activeRetries() == 20);
  CHECK(budget.exhaustedTotal() == 80);
  // Retries finishing free room for others.
  budget.retryFinished();
  budget.retryFinished();
  CHECK(budget.tryAcquireRetry());
  CHECK(budget.tryAcquireRetry());
  CHECK_FALSE(budget.tryAcquireRetry());
  for (int i = 0; i < 100; ++i) {
    budget.requestFinished();
  }
  for (int i = 0; i < 20; ++i) {
    budget.retryFinished();
  }
  CHECK(budget.activeRetries() == 0);
  CHECK(budget.limit() == 3);
}

// A backend that answers 503 to every other request it sees, as the e2e "fail 50%" mode does.
struct HalfFailingBackend {
  uint64_t seen = 0;
  uint64_t posts_seen = 0;
  int serve(std::string_view method) {
    ++seen;
    if (method == "POST") {
      ++posts_seen;
    }
    return seen % 2 == 1 ? 503 : 200;
  }
};

// The retry loop the outbound agent runs around one request.
struct Client {
  RetryPolicy policy;
  RetryBudget budget{0.2, 3};
  uint64_t retries = 0;
  int send(HalfFailingBackend& backend, std::string_view method) {
    budget.requestStarted();
    uint32_t tries = 0;
    int status = 0;
    for (;;) {
      status = backend.serve(method);
      ++tries;
      if (status < 500 || !retryable(policy, tries, method, status, true) ||
          !budget.tryAcquireRetry()) {
        break;
      }
      ++retries;
      budget.retryFinished();
    }
    budget.requestFinished();
    return status;
  }
};

TEST_CASE("a half-failing backend with 2 retries: 99% success, exact retry count, POST once",
          "[routing]") {
  Client client{.policy = RetryPolicy{.attempts = 2, .status_codes = {503}}};
  HalfFailingBackend backend;
  int ok = 0;
  for (int i = 0; i < 1000; ++i) {
    ok += client.send(backend, "GET") == 200 ? 1 : 0;
  }
  CHECK(ok >= 990);
  CHECK(client.retries == backend.seen - 1000);
  CHECK(client.retries > 0);

  uint64_t retries_before = client.retries;
  int post_failures = 0;
  for (int i = 0; i < 100; ++i) {
    post_failures += client.send(backend, "POST") == 503 ? 1 : 0;
  }
  CHECK(backend.posts_seen == 100);
  CHECK(client.retries == retries_before);
  CHECK(post_failures == 50);
}

}  // namespace
}  // namespace ferry::routing
