// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The destination agent's table of resumable streams (agent/drain/resume_registry.h): who may
// resume, what an unknown or handed-over token is answered, and suspended streams expiring.
#include "agent/drain/resume_registry.h"

#include <catch2/catch.hpp>

namespace ferry::agent {
namespace {

using hbone::ResumeToken;
using namespace std::chrono_literals;

const tls::SpiffeId kCart{"cluster.local", "shop", "cart"};
const tls::SpiffeId kOther{"cluster.local", "shop", "other"};

ResumeRegistry::Entry entry(int worker, uint64_t handle) {
  return {.binding = {kCart, "10.0.1.5:8080"}, .worker = worker, .handle = handle};
}

TEST_CASE("resume registry: the bound identity and authority resume, nobody else", "[resume]") {
  ResumeRegistry r;
  ResumeToken t = ResumeToken::generate();
  REQUIRE(r.add(t, entry(1, 42)));
  CHECK_FALSE(r.add(t, entry(0, 7)));  // a reused token gets no second stream
  CHECK(r.resume(t, kOther, "10.0.1.5:8080", false).status == 403);
  CHECK(r.resume(t, kCart, "10.0.1.5:9090", false).status == 400);
  ResumeRegistry::Answer a = r.resume(t, kCart, "10.0.1.5:8080", false);
  REQUIRE(a.status == 200);
  REQUIRE(a.entry.has_value());
  CHECK(a.entry->worker == 1);
  CHECK(a.entry->handle == 42);
  r.remove(t);
  CHECK(r.resume(t, kCart, "10.0.1.5:8080", false).status == hbone::kResumeUnknown);
  CHECK(r.size() == 0);
}

TEST_CASE("resume registry: unknown tokens are gone, or not here yet during a hand-over",
          "[resume]") {
  ResumeRegistry r;
  ResumeToken t = ResumeToken::generate();
  CHECK(r.resume(t, kCart, "10.0.1.5:8080", /*expecting_more=*/false).status ==
        hbone::kResumeUnknown);
  CHECK(r.resume(t, kCart, "10.0.1.5:8080", /*expecting_more=*/true).status == hbone::kResumeRetry);
  // A stream handed to the successor: its binding still guards it, then "ask again".
  REQUIRE(r.add(t, entry(0, 1)));
  r.handedOver(t);
  CHECK(r.resume(t, kOther, "10.0.1.5:8080", false).status == 403);
  CHECK(r.resume(t, kCart, "10.0.1.5:8080", false).status == hbone::kResumeRetry);
}

TEST_CASE("resume registry: suspended streams expire at their deadline, resumed ones do not",
          "[resume]") {
  ResumeRegistry r;
  const auto now = ResumeRegistry::Clock::now();
  ResumeToken lost = ResumeToken::generate();
  ResumeToken back = ResumeToken::generate();
  ResumeToken live = ResumeToken::generate();
  REQUIRE(r.add(lost, entry(0, 1)));
  REQUIRE(r.add(back, entry(0, 2)));
  REQUIRE(r.add(live, entry(1, 3)));
  r.suspend(lost, now + 10s);
  r.suspend(back, now + 10s);
  CHECK(r.expire(now + 9s).empty());
  REQUIRE(r.resume(back, kCart, "10.0.1.5:8080", false).status == 200);
  std::vector<ResumeRegistry::Entry> expired = r.expire(now + 10s);
  REQUIRE(expired.size() == 1);
  CHECK(expired[0].handle == 1);
  CHECK(r.size() == 2);
  CHECK(r.resume(lost, kCart, "10.0.1.5:8080", false).status == hbone::kResumeUnknown);
  CHECK(r.expire(now + 1h).empty());  // attached streams never expire
}

}  // namespace
}  // namespace ferry::agent
