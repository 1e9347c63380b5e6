// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controlplane/renewal.h"

#include <catch2/catch.hpp>

namespace ferry::controlplane {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

TEST_CASE("certificates renew at half-life and failures back off with jitter", "[ca][renewal]") {
  FakeClock clock(kT0);
  int calls = 0;
  bool fail = false;
  CertRenewer renewer(
      clock,
      [&]() -> absl::StatusOr<IssuedCert> {
        ++calls;
        if (fail) {
          return absl::UnavailableError("controller away");
        }
        return IssuedCert{"pem", clock.now(), clock.now() + absl::Hours(24)};
      },
      RenewalPolicy{}, /*seed=*/42);

  REQUIRE(renewer.tick());  // no certificate yet: issue at once
  CHECK(calls == 1);
  CHECK(renewer.valid());
  CHECK(renewer.nextAttempt() == kT0 + absl::Hours(12));

  clock.advance(absl::Hours(12) - absl::Seconds(1));
  CHECK_FALSE(renewer.tick());
  CHECK(calls == 1);
  clock.advance(absl::Seconds(1));  // exactly half-life
  REQUIRE(renewer.tick());
  CHECK(calls == 2);
  CHECK(renewer.nextAttempt() == kT0 + absl::Hours(24));  // half-life of the new certificate

  // The controller is away at the next renewal: exponential backoff, each delay jittered
  // within [base/2, base], capped, and never past expiry.
  clock.set(renewer.nextAttempt());
  fail = true;
  absl::Duration base = absl::Seconds(1);
  for (int i = 0; i < 12; ++i) {
    const absl::Time before = clock.now();
    REQUIRE(renewer.tick());
    absl::Duration delay = renewer.nextAttempt() - before;
    INFO("attempt " << i << " delay " << absl::FormatDuration(delay));
    CHECK(delay >= base / 2);
    CHECK(delay <= base);
    CHECK(renewer.consecutiveFailures() == i + 1);
    base = std::min(base * 2, absl::Minutes(5));
    clock.set(renewer.nextAttempt());
  }
  CHECK(renewer.valid());  // still the old certificate, still within its lifetime
  CHECK(renewer.lastError().code() == absl::StatusCode::kUnavailable);

  fail = false;
  REQUIRE(renewer.tick());
  CHECK(renewer.consecutiveFailures() == 0);
  CHECK(renewer.nextAttempt() == clock.now() + absl::Hours(12));
}

TEST_CASE("renewal retries are jittered: two agents do not retry in lockstep", "[ca][renewal]") {
  FakeClock clock(kT0);
  auto failing = []() -> absl::StatusOr<IssuedCert> { return absl::UnavailableError("x"); };
  CertRenewer a(clock, failing, RenewalPolicy{}, 1);
  CertRenewer b(clock, failing, RenewalPolicy{}, 2);
  int differ = 0;
  for (int i = 0; i < 5; ++i) {
    a.tick();
    b.tick();
    differ += a.nextAttempt() != b.nextAttempt();
    clock.set(std::max(a.nextAttempt(), b.nextAttempt()));
  }
  CHECK(differ >= 4);
}

TEST_CASE("a failing renewal never schedules past expiry", "[ca][renewal]") {
  FakeClock clock(kT0);
  bool fail = false;
  RenewalPolicy policy;
  policy.initial_backoff = absl::Hours(1);
  policy.max_backoff = absl::Hours(8);
  CertRenewer r(
      clock,
      [&]() -> absl::StatusOr<IssuedCert> {
        if (fail) {
          return absl::UnavailableError("x");
        }
        return IssuedCert{"pem", clock.now(), clock.now() + absl::Hours(2)};
      },
      policy, 7);
  REQUIRE(r.tick());
  fail = true;
  clock.set(r.nextAttempt());  // +1h
  for (int i = 0; i < 4; ++i) {
    r.tick();
    CHECK(r.nextAttempt() <= kT0 + absl::Hours(2));
    clock.set(std::max(clock.now() + absl::Minutes(1), r.nextAttempt()));
    if (clock.now() >= kT0 + absl::Hours(2)) {
      break;
    }
  }
}

}  // namespace
}  // namespace ferry::controlplane
