// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The destination agent's table of resumable streams (agent/drain/resume_registry.h): who may
// resume, what an unknown, attached or handed-over token is answered, parked streams leaving with
// their resume or expiring, and a successor's parked streams.
#include "agent/drain/resume_registry.h"

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

namespace ferry::agent {
namespace {

using hbone::ResumeToken;
using namespace std::chrono_literals;

const tls::SpiffeId kCart{"cluster.local", "shop", "cart"};
const tls::SpiffeId kOther{"cluster.local", "shop", "other"};
constexpr char kAuthority[] = "10.0.1.5:8080";

// A parked stream with a real socket (its peer end in `*peer_fd`), `delivered` as a marker.
HandedStream parkedStream(const ResumeToken& t, uint64_t delivered, int* peer_fd) {
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
  *peer_fd = pair[1];
  return {.role = HandedStream::Role::kServer,
          .token = t,
          .peer = kCart.uri(),
          .authority = kAuthority,
          .delivered = delivered,
          .app_fd = pair[0]};
}

// True when the socket's peer end was closed (read returns 0 or an error, not "would block").
bool peerClosed(int fd) {
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0 && errno != EAGAIN;
}

TEST_CASE("resume registry: the bound identity and authority resume a parked stream, nobody else",
          "[resume]") {
  ResumeRegistry r;
  ResumeToken t = ResumeToken::generate();
  REQUIRE(r.add(t));
  CHECK_FALSE(r.add(t));  // a reused token gets no second stream
  // Attached (its client side's suspension is still on its way): ask again.
  CHECK(r.resume(t, kCart, kAuthority, false).status == hbone::kResumeRetry);
  int peer = -1;
  REQUIRE(r.park(parkedStream(t, 77, &peer), ResumeRegistry::Clock::now() + 10s));
  CHECK(r.parked() == 1);
  CHECK(r.resume(t, kOther, kAuthority, false).status == 403);
  CHECK(r.resume(t, kCart, "10.0.1.5:9090", false).status == 400);
  ResumeRegistry::Answer a = r.resume(t, kCart, kAuthority, false);
  REQUIRE(a.status == 200);
  REQUIRE(a.stream.has_value());
  CHECK(a.stream->delivered == 77);
  CHECK(r.parked() == 0);
  // Attached again on the new connection: a second resume is told to retry, not given the stream.
  CHECK(r.resume(t, kCart, kAuthority, false).status == hbone::kResumeRetry);
  r.remove(t);
  CHECK(r.resume(t, kCart, kAuthority, false).status == hbone::kResumeUnknown);
  CHECK(r.size() == 0);
  ::close(a.stream->app_fd);
  ::close(peer);
}

TEST_CASE("resume registry: unknown tokens are gone, or not here yet during a hand-over",
          "[resume]") {
  ResumeRegistry r;
  ResumeToken t = ResumeToken::generate();
  CHECK(r.resume(t, kCart, kAuthority, /*expecting_more=*/false).status == hbone::kResumeUnknown);
  CHECK(r.resume(t, kCart, kAuthority, /*expecting_more=*/true).status == hbone::kResumeRetry);
  // A stream handed to the successor: its binding still guards it, then "ask again".
  REQUIRE(r.add(t));
  r.handedOver({.role = HandedStream::Role::kServer,
                .token = t,
                .peer = kCart.uri(),
                .authority = kAuthority});
  CHECK(r.resume(t, kOther, kAuthority, false).status == 403);
  CHECK(r.resume(t, kCart, kAuthority, false).status == hbone::kResumeRetry);
}

TEST_CASE("resume registry: a predecessor's stream is parked under its recorded binding",
          "[resume]") {
  ResumeRegistry r;
  ResumeToken t = ResumeToken::generate();
  int peer = -1;
  REQUIRE(r.park(parkedStream(t, 5, &peer), ResumeRegistry::Clock::now() + 10s));
  CHECK(r.resume(t, kOther, kAuthority, false).status == 403);
  ResumeRegistry::Answer a = r.resume(t, kCart, kAuthority, false);
  REQUIRE(a.status == 200);
  CHECK(a.stream->delivered == 5);
  ::close(a.stream->app_fd);
  ::close(peer);
  // A record whose peer is not a SPIFFE ID binds nobody: refused.
  HandedStream bad = parkedStream(ResumeToken::generate(), 0, &peer);
  bad.peer = "not-a-spiffe-id";
  CHECK_FALSE(r.park(bad, ResumeRegistry::Clock::now() + 10s));
  ::close(bad.app_fd);
  ::close(peer);
}

TEST_CASE("resume registry: parked streams expire at their deadline, resumed ones do not",
          "[resume]") {
  ResumeRegistry r;
  const auto now = ResumeRegistry::Clock::now();
  ResumeToken lost = ResumeToken::generate();
  ResumeToken back = ResumeToken::generate();
  ResumeToken live = ResumeToken::generate();
  for (const ResumeToken& t : {lost, back, live}) {
    REQUIRE(r.add(t));
  }
  int lost_peer = -1, back_peer = -1;
  REQUIRE(r.park(parkedStream(lost, 1, &lost_peer), now + 10s));
  REQUIRE(r.park(parkedStream(back, 2, &back_peer), now + 10s));
  CHECK(r.expire(now + 9s).empty());
  ResumeRegistry::Answer a = r.resume(back, kCart, kAuthority, false);
  REQUIRE(a.status == 200);
  std::vector<HandedStream> expired = r.expire(now + 10s);
  REQUIRE(expired.size() == 1);
  CHECK(expired[0].delivered == 1);
  CHECK(r.size() == 2);
  CHECK(r.resume(lost, kCart, kAuthority, false).status == hbone::kResumeUnknown);
  CHECK(r.expire(now + 1h).empty());  // attached streams never expire
  for (int fd : {expired[0].app_fd, lost_peer, a.stream->app_fd, back_peer}) {
    ::close(fd);
  }
}

TEST_CASE("resume registry: parked streams go to a successor, the rest are reset with it",
          "[resume]") {
  int kept_peer = -1, left_peer = -1;
  {
    ResumeRegistry r;
    ResumeToken kept = ResumeToken::generate();
    REQUIRE(r.park(parkedStream(kept, 3, &kept_peer), ResumeRegistry::Clock::now() + 10s));
    std::vector<HandedStream> handed = r.handOverParked();
    REQUIRE(handed.size() == 1);
    CHECK(handed[0].delivered == 3);
    CHECK(r.resume(kept, kCart, kAuthority, false).status == hbone::kResumeRetry);
    ::close(handed[0].app_fd);
    REQUIRE(r.park(parkedStream(ResumeToken::generate(), 4, &left_peer),
                   ResumeRegistry::Clock::now() + 10s));
  }
  CHECK(peerClosed(left_peer));  // the registry went with its parked stream's socket
  ::close(kept_peer);
  ::close(left_peer);
}

}  // namespace
}  // namespace ferry::agent
