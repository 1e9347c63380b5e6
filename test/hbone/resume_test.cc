// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Stream resumption's shared pieces (hbone/resume.h): the token, the `ferry-resume` header,
// the identity binding, the retransmission ledger, and the confirmation read from HTTP/2 flow
// control on a real client/server pair.

#include "hbone/resume.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "pair.h"

namespace ferry::hbone::testing {
namespace {

std::vector<uint8_t> sequence(size_t n, uint64_t seed) {
  std::vector<uint8_t> out(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (uint8_t& b : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<uint8_t>(x);
  }
  return out;
}

absl::Span<const uint8_t> slice(const std::vector<uint8_t>& v, size_t from, size_t n) {
  return {v.data() + from, n};
}

TEST_CASE("resume tokens are 22 base64url characters, random, and parse back") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    ResumeToken t = ResumeToken::generate();
    std::string text = t.str();
    CHECK(text.size() == ResumeToken::kTextLength);
    CHECK(text.find_first_not_of(
              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
          std::string::npos);
    auto back = ResumeToken::parse(text);
    REQUIRE(back.has_value());
    CHECK(*back == t);
    seen.insert(text);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("resume tokens refuse every other spelling") {
  std::string good = ResumeToken::generate().str();
  CHECK_FALSE(ResumeToken::parse("").has_value());
  CHECK_FALSE(ResumeToken::parse(good.substr(1)).has_value());
  CHECK_FALSE(ResumeToken::parse(good + "A").has_value());
  CHECK_FALSE(ResumeToken::parse(good + "==").has_value());
  std::string plus = good;
  plus[3] = '+';  // standard base64, not base64url
  CHECK_FALSE(ResumeToken::parse(plus).has_value());
  // The last character's 2 low bits are padding: only the canonical one ("A", "Q", "g", "w")
  // is accepted, so one token has one spelling.
  std::string odd = good;
  odd.back() = 'B';
  CHECK_FALSE(ResumeToken::parse(odd).has_value());
}

TEST_CASE("the ferry-resume header round-trips each message") {
  ResumeToken t = ResumeToken::generate();
  const std::vector<std::pair<ResumeHeader, std::string>> rows = {
      {{.token = t}, "v1; token=" + t.str()},
      {{}, "v1"},
      {{.token = t, .delivered = 0}, "v1; token=" + t.str() + "; delivered=0"},
      {{.token = t, .delivered = 18446744073709551615ull},
       "v1; token=" + t.str() + "; delivered=18446744073709551615"},
      {{.delivered = 42}, "v1; delivered=42"},
      {{.retry = true}, "v1; retry"},
  };
  for (const auto& [h, text] : rows) {
    CAPTURE(text);
    CHECK(formatResume(h) == text);
    auto back = parseResume(text);
    REQUIRE(back.has_value());
    CHECK(back->token == h.token);
    CHECK(back->delivered == h.delivered);
    CHECK(back->retry == h.retry);
  }
  CHECK(parseResume("v1; token=" + t.str())->isOffer());
  CHECK(parseResume("v1; token=" + t.str() + "; delivered=5")->isResume());
  CHECK_FALSE(parseResume("v1; delivered=5")->isResume());
  // Whitespace around parameters and unknown parameters are tolerated.
  auto loose = parseResume(" v1 ;token=" + t.str() + " ; future=1");
  REQUIRE(loose.has_value());
  CHECK(loose->token == t);
}

TEST_CASE("a malformed or foreign ferry-resume header means: the peer does not resume") {
  std::string tok = ResumeToken::generate().str();
  for (const std::string& bad :
       {std::string(""), std::string("v2; token=") + tok, std::string("V1"),
        std::string("v1; token=short"), "v1; token=" + tok + "; token=" + tok,
        std::string("v1; delivered="), std::string("v1; delivered=-1"),
        std::string("v1; delivered=+5"), std::string("v1; delivered=1e3"),
        std::string("v1; delivered=99999999999999999999"), std::string("v1; retry; retry"),
        std::string("v1;; retry")}) {
    CAPTURE(bad);
    CHECK_FALSE(parseResume(bad).has_value());
  }
  // No header at all: a null view (what a stream without the header hands over). It crashed
  // the agent once (absl splits a null view into no parts).
  CHECK_FALSE(parseResume(std::string_view()).has_value());
}

TEST_CASE("a resume is honoured only for the identity and authority the stream was opened with") {
  ResumeBinding bound{{"cluster.local", "shop", "cart"}, "10.0.1.5:8080"};
  CHECK(checkResume(bound, {"cluster.local", "shop", "cart"}, "10.0.1.5:8080") == ResumeCheck::kOk);
  CHECK(checkResume(bound, {"cluster.local", "shop", "other"}, "10.0.1.5:8080") ==
        ResumeCheck::kWrongPeer);
  CHECK(checkResume(bound, {"cluster.local", "pay", "cart"}, "10.0.1.5:8080") ==
        ResumeCheck::kWrongPeer);
  CHECK(checkResume(bound, {"other.domain", "shop", "cart"}, "10.0.1.5:8080") ==
        ResumeCheck::kWrongPeer);
  CHECK(checkResume(bound, {"cluster.local", "shop", "cart"}, "10.0.1.5:8081") ==
        ResumeCheck::kWrongAuthority);
  CHECK(resumeStatus(ResumeCheck::kOk) == 200);
  CHECK(resumeStatus(ResumeCheck::kWrongPeer) == 403);
  CHECK(resumeStatus(ResumeCheck::kWrongAuthority) == 400);
}

TEST_CASE("the ledger keeps exactly the unconfirmed bytes") {
  std::vector<uint8_t> data = sequence(100000, 1);
  RetransmitLedger l;
  l.record(slice(data, 0, 60000));
  l.record(slice(data, 60000, 40000));
  CHECK(l.sentOffset() == 100000);
  CHECK(l.retainedBytes() == 100000);
  REQUIRE(l.confirm(30000).ok());
  CHECK(l.confirmedOffset() == 30000);
  CHECK(l.retainedBytes() == 70000);
  CHECK(std::vector<uint8_t>(l.unconfirmed().begin(), l.unconfirmed().end()) ==
        std::vector<uint8_t>(data.begin() + 30000, data.end()));
  REQUIRE(l.confirm(10000).ok());  // stale: nothing changes
  CHECK(l.confirmedOffset() == 30000);
  CHECK_FALSE(l.confirm(100001).ok());  // more than was sent
  CHECK(l.confirmedOffset() == 30000);
  REQUIRE(l.confirm(100000).ok());
  CHECK(l.retainedBytes() == 0);
  CHECK(l.heldBytes() == 0);  // an idle, fully confirmed stream holds no memory
}

TEST_CASE("a replay starts at the peer's delivered byte and refuses impossible offsets") {
  std::vector<uint8_t> data = sequence(5000, 2);
  RetransmitLedger l;
  l.record(slice(data, 0, 5000));
  REQUIRE(l.confirm(1000).ok());
  CHECK_FALSE(l.replayFrom(999).ok());   // the peer lost bytes it had confirmed
  CHECK_FALSE(l.replayFrom(5001).ok());  // the peer claims bytes never sent
  auto replay = l.replayFrom(3000);
  REQUIRE(replay.ok());
  CHECK(std::vector<uint8_t>(replay->begin(), replay->end()) ==
        std::vector<uint8_t>(data.begin() + 3000, data.end()));
  auto nothing = l.replayFrom(5000);
  REQUIRE(nothing.ok());
  CHECK(nothing->empty());
}

// The whole accounting across a lost connection: bytes in flight are lost, the receiver says
// what it delivered, the sender replays from there; after several such losses the receiver has
// every byte once, in order. `restore` stands for the hand-over to a new agent in between.
TEST_CASE("resuming after lost connections delivers every byte once and in order") {
  std::vector<uint8_t> data = sequence(1 << 20, 3);
  RetransmitLedger sender;
  std::vector<uint8_t> delivered;
  size_t next = 0;
  std::vector<uint8_t> in_flight;
  for (int round = 0; round < 8; ++round) {
    // The app writes a chunk; it goes on the wire.
    size_t n = std::min<size_t>(150000, data.size() - next);
    sender.record(slice(data, next, n));
    in_flight.insert(in_flight.end(), data.begin() + static_cast<long>(next),
                     data.begin() + static_cast<long>(next + n));
    next += n;
    // Part of it reaches the receiver's app (and is credited), the rest is lost with the
    // connection.
    size_t arrives = in_flight.size() / 3;
    delivered.insert(delivered.end(), in_flight.begin(),
                     in_flight.begin() + static_cast<long>(arrives));
    in_flight.clear();
    if (round % 2 == 0) {
      REQUIRE(sender.confirm(delivered.size()).ok());  // a credit that made it back
    }
    // Hand-over: the new agent gets the confirmed offset and the unconfirmed bytes.
    sender = RetransmitLedger::restore(sender.confirmedOffset(), sender.unconfirmed());
    // Resume: the receiver says how much it delivered; the sender replays the rest.
    auto replay = sender.replayFrom(delivered.size());
    REQUIRE(replay.ok());
    in_flight.assign(replay->begin(), replay->end());
  }
  delivered.insert(delivered.end(), in_flight.begin(), in_flight.end());
  REQUIRE(sender.confirm(delivered.size()).ok());
  CHECK(next == data.size());
  CHECK(delivered == data);
  CHECK(sender.retainedBytes() == 0);
}

TEST_CASE("confirmedByWindow reads the credited bytes and refuses more credit than data") {
  CHECK(*confirmedByWindow(0, 65535, 65535) == 0);
  CHECK(*confirmedByWindow(1000, 65535 - 1000, 65535) == 0);
  CHECK(*confirmedByWindow(1000, 65535 - 400, 65535) == 600);
  CHECK(*confirmedByWindow(1000, 65535, 65535) == 1000);
  CHECK_FALSE(confirmedByWindow(1000, 65536, 65535).ok());
  CHECK_FALSE(confirmedByWindow(1000, 65535 - 1001, 65535).ok());
}

// HBONE credits window only for bytes the app side consumed: bytes the server received but did
// not consume are not confirmed, and once it consumes, the client's confirmation follows.
TEST_CASE("on a real pair, confirmation counts the bytes the receiver consumed, not received") {
  fakes::FakeCa ca;
  Pair p = makePair(ca);
  auto id = p.client->openStream(*Authority::parse("10.0.0.2:80"));
  REQUIRE(id.ok());
  std::vector<uint8_t> data = sequence(200 * 1024, 4);
  REQUIRE(p.client->write(*id, slice(data, 0, data.size())) == data.size());
  p.pump();
  CHECK(p.client->dataSent(*id) == data.size());
  CHECK(p.server->peek(*id).size() == data.size());
  CHECK(*p.client->confirmedDelivered(*id) == 0);
  // nghttp2 credits once half the window (1 MiB) is consumed: consume 600 KiB in total.
  p.server->consume(*id, data.size());
  p.pump();
  CHECK(*p.client->confirmedDelivered(*id) == 0);  // 200 KiB consumed: not credited yet
  std::vector<uint8_t> more = sequence(400 * 1024, 5);
  size_t written = 0;
  while (written < more.size()) {
    written += p.client->write(*id, slice(more, written, more.size() - written));
    p.pump();
    p.server->consume(*id, p.server->peek(*id).size());
    p.pump();
  }
  uint64_t total = data.size() + more.size();
  CHECK(p.client->dataSent(*id) == total);
  auto confirmed = p.client->confirmedDelivered(*id);
  REQUIRE(confirmed.ok());
  CHECK(*confirmed >= 512 * 1024);  // at least one stream WINDOW_UPDATE arrived
}

}  // namespace
}  // namespace ferry::hbone::testing

namespace ferry::hbone::testing {
namespace {

// One end's app side of a resumable stream: what its app wrote (kept until confirmed) and what
// was delivered to it.
struct End {
  RetransmitLedger ledger;
  std::string delivered;

  // Moves everything readable on `conn`'s stream into `delivered` (consumed: credited back).
  void read(HboneConnection& conn, StreamId id) {
    absl::Span<const uint8_t> data = conn.peek(id);
    delivered.append(reinterpret_cast<const char*>(data.data()), data.size());
    conn.consume(id, data.size());
  }
};

std::string asString(absl::Span<const uint8_t> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

const HboneEvent* find(const std::vector<HboneEvent>& events, HboneEventType type, StreamId id) {
  for (const HboneEvent& e : events) {
    if (e.type == type && e.stream == id) {
      return &e;
    }
  }
  return nullptr;
}

// The server's accept callback for a resumable stream: accept offers, and on a resume check the
// binding and answer with what the server's app was given.
struct ResumingServer {
  std::optional<ResumeBinding> bound;
  std::optional<ResumeToken> token;
  uint64_t delivered = 0;
  bool resume_protocol = true;  // false: an agent that does not know the header
  int resumes = 0;

  AcceptCallback callback(HboneServer** server) {
    return [this, server](const StreamRequest& r) {
      if (!resume_protocol) {
        return 200;
      }
      auto h = parseResume(r.resume);
      if (h && h->isOffer()) {
        bound = ResumeBinding{r.peer, r.authority.toString()};
        token = h->token;
        (*server)->setResumeAnswer(r.id, formatResume({}));
        return 200;
      }
      if (h && h->isResume()) {
        if (!token || !(*h->token == *token)) {
          return kResumeUnknown;
        }
        ResumeCheck check = checkResume(*bound, r.peer, r.authority.toString());
        if (check != ResumeCheck::kOk) {
          return resumeStatus(check);
        }
        ++resumes;
        (*server)->setResumeAnswer(r.id, formatResume({.delivered = delivered}));
        return 200;
      }
      return 200;
    };
  }
};

Pair resumingPair(const PairContexts& contexts, ResumingServer& rs) {
  auto holder = std::make_shared<HboneServer*>(nullptr);
  PairOptions options;
  options.accept = [cb = rs.callback(holder.get()), holder](const StreamRequest& r) {
    return cb(r);
  };
  Pair p = newPair(contexts, std::move(options));
  *holder = p.server.get();
  p.pump();
  REQUIRE(p.client->handshakeDone());
  return p;
}

TEST_CASE("an offer is accepted by a resuming server and ignored by an older one") {
  fakes::FakeCa ca;
  PairContexts contexts = makeContexts(ca);
  ResumingServer rs;
  rs.resume_protocol = GENERATE(true, false);
  Pair p = resumingPair(contexts, rs);
  ResumeToken token = ResumeToken::generate();
  auto id =
      p.client->openStream(*Authority::parse("10.0.0.2:80"), {}, formatResume({.token = token}));
  REQUIRE(id.ok());
  REQUIRE(p.client->write(*id, bytes("hello")) == 5);
  p.pump();
  REQUIRE(p.client->responseStatus(*id) == 200);
  auto answer = parseResume(p.client->resumeHeader(*id));
  if (rs.resume_protocol) {
    REQUIRE(answer.has_value());
    CHECK_FALSE(answer->token.has_value());
    CHECK(rs.token == token);
    CHECK(rs.bound->peer == tls::SpiffeId{ca.trustDomain(), "shop", "cart"});
  } else {
    CHECK(p.client->resumeHeader(*id).empty());  // not resumable: today's behaviour
    CHECK_FALSE(answer.has_value());
  }
  CHECK(asString(p.server->peek(*id)) == "hello");  // the stream works either way
}

// What the agent's client bridge has to handle (StreamBridge::onResponse): a destination that
// hands a stream over right after accepting it sends the 200 and the FRSM back to back; read in
// one go, the stream is closed before its answer is dispatched, so the answer's ferry-resume
// header is gone by then. The FRSM itself is the proof of acceptance. e2e_upgrade_test found
// this under load: the bridge had read the missing header as "not accepted" and reset the app.
TEST_CASE(
    "an answer and a hand-over FRSM read together: the answer comes first, its header is gone") {
  fakes::FakeCa ca;
  PairContexts contexts = makeContexts(ca);
  ResumingServer rs;
  Pair p = resumingPair(contexts, rs);
  auto id = p.client->openStream(*Authority::parse("10.0.0.2:80"), {},
                                 formatResume({.token = ResumeToken::generate()}));
  REQUIRE(id.ok());
  p.hold_server_to_client = true;  // the answer waits in the server's output...
  p.pump();
  REQUIRE(p.client->responseStatus(*id) != 200);
  p.server->reset(*id, kSuspendErrorCode);  // ...and the hand-over's FRSM joins it
  p.hold_server_to_client = false;
  p.client_events.clear();
  p.pump();
  size_t response = p.client_events.size();
  size_t closed = p.client_events.size();
  for (size_t i = 0; i < p.client_events.size(); ++i) {
    const HboneEvent& e = p.client_events[i];
    if (e.stream == *id && e.type == HboneEventType::kResponse &&
        response == p.client_events.size()) {
      response = i;
    }
    if (e.stream == *id && e.type == HboneEventType::kClosed) {
      closed = i;
      CHECK(e.error_code == kSuspendErrorCode);
    }
  }
  REQUIRE(response < p.client_events.size());
  REQUIRE(closed < p.client_events.size());
  CHECK(response < closed);
  CHECK_FALSE(p.client->hasStream(*id));
  CHECK(p.client->resumeHeader(*id).empty());
  CHECK_FALSE(parseResume(p.client->resumeHeader(*id)).has_value());
}

// A whole resumption at the HBONE level: bytes both ways, the server detaches the stream with
// the suspend code (its agent is handing over), the first connection is lost with bytes in
// flight and unconsumed, and on a new connection the client resumes with the token; each side
// retransmits from the other's delivered offset and every byte arrives once, in order.
TEST_CASE("a stream resumed on a new connection delivers every byte once, both ways") {
  fakes::FakeCa ca;
  PairContexts contexts = makeContexts(ca);
  ResumingServer rs;
  End client_end;
  End server_end;
  std::vector<uint8_t> up = sequence(300000, 7);
  std::vector<uint8_t> down = sequence(250000, 8);
  const Authority target = *Authority::parse("10.0.0.2:80");
  ResumeToken token = ResumeToken::generate();

  Pair first = resumingPair(contexts, rs);
  auto id = first.client->openStream(target, {}, formatResume({.token = token}));
  REQUIRE(id.ok());
  // The client's app writes 200 KB; the server's app reads only part of it.
  size_t up_written = first.client->write(*id, slice(up, 0, 200000));
  client_end.ledger.record(slice(up, 0, up_written));
  first.pump();
  REQUIRE(parseResume(first.client->resumeHeader(*id)).has_value());
  absl::Span<const uint8_t> arrived = first.server->peek(*id);
  size_t take = arrived.size() / 2;
  server_end.delivered.append(reinterpret_cast<const char*>(arrived.data()), take);
  first.server->consume(*id, take);
  // The server's app writes 150 KB; the client's app reads all that arrives.
  size_t down_written = first.server->write(*id, slice(down, 0, 150000));
  server_end.ledger.record(slice(down, 0, down_written));
  first.pump();
  client_end.read(*first.client, *id);
  // The destination agent hands over: it detaches the stream with the suspend code.
  first.server->reset(*id, kSuspendErrorCode);
  first.pump();
  const HboneEvent* closed = find(first.client_events, HboneEventType::kClosed, *id);
  REQUIRE(closed != nullptr);
  CHECK(closed->error_code == kSuspendErrorCode);
  rs.delivered = server_end.delivered.size();

  // A new connection (a new agent on either side): resume.
  Pair second = resumingPair(contexts, rs);
  auto resumed = second.client->openStream(
      target, {}, formatResume({.token = token, .delivered = client_end.delivered.size()}));
  REQUIRE(resumed.ok());
  second.pump();
  REQUIRE(second.client->responseStatus(*resumed) == 200);
  CHECK(rs.resumes == 1);
  auto answer = parseResume(second.client->resumeHeader(*resumed));
  REQUIRE(answer.has_value());
  REQUIRE(answer->delivered.has_value());
  CHECK(*answer->delivered == server_end.delivered.size());
  // Each side replays what the other has not delivered, then carries on with new bytes.
  auto up_replay = client_end.ledger.replayFrom(*answer->delivered);
  auto down_replay = server_end.ledger.replayFrom(client_end.delivered.size());
  REQUIRE(up_replay.ok());
  REQUIRE(down_replay.ok());
  std::string up_rest =
      asString(*up_replay) + asString(slice(up, up_written, up.size() - up_written));
  std::string down_rest =
      asString(*down_replay) + asString(slice(down, down_written, down.size() - down_written));
  size_t up_at = 0;
  size_t down_at = 0;
  for (int round = 0; round < 1000 && (up_at < up_rest.size() || down_at < down_rest.size());
       ++round) {
    up_at += second.client->write(*resumed, bytes(up_rest.substr(up_at, 65536)));
    down_at += second.server->write(*resumed, bytes(down_rest.substr(down_at, 65536)));
    second.pump();
    server_end.read(*second.server, *resumed);
    client_end.read(*second.client, *resumed);
    second.pump();
  }
  CHECK(server_end.delivered == asString(slice(up, 0, up.size())));
  CHECK(client_end.delivered == asString(slice(down, 0, down.size())));
}

TEST_CASE("a resume with an unknown token or from another identity is refused") {
  fakes::FakeCa ca;
  PairContexts contexts = makeContexts(ca);
  ResumingServer rs;
  ResumeToken token = ResumeToken::generate();
  Pair first = resumingPair(contexts, rs);
  auto id = first.client->openStream(*Authority::parse("10.0.0.2:80"), {},
                                     formatResume({.token = token}));
  REQUIRE(id.ok());
  first.pump();
  REQUIRE(rs.token == token);

  SECTION("unknown token: 410") {
    Pair p = resumingPair(contexts, rs);
    auto r = p.client->openStream(*Authority::parse("10.0.0.2:80"), {},
                                  formatResume({.token = ResumeToken::generate(), .delivered = 0}));
    REQUIRE(r.ok());
    p.pump();
    const HboneEvent* answer = find(p.client_events, HboneEventType::kResponse, *r);
    REQUIRE(answer != nullptr);  // a refused stream is gone once answered: read the event
    CHECK(answer->status == kResumeUnknown);
  }
  SECTION("another identity with the right token: 403") {
    PairContexts other = contexts;
    other.client = contextFor(ca.issue("shop", "intruder"), ca.bundle());
    Pair p = resumingPair(other, rs);
    auto r = p.client->openStream(*Authority::parse("10.0.0.2:80"), {},
                                  formatResume({.token = token, .delivered = 0}));
    REQUIRE(r.ok());
    p.pump();
    const HboneEvent* answer = find(p.client_events, HboneEventType::kResponse, *r);
    REQUIRE(answer != nullptr);  // a refused stream is gone once answered: read the event
    CHECK(answer->status == 403);
  }
  SECTION("another authority: 400") {
    Pair p = resumingPair(contexts, rs);
    auto r = p.client->openStream(*Authority::parse("10.0.0.2:81"), {},
                                  formatResume({.token = token, .delivered = 0}));
    REQUIRE(r.ok());
    p.pump();
    const HboneEvent* answer = find(p.client_events, HboneEventType::kResponse, *r);
    REQUIRE(answer != nullptr);  // a refused stream is gone once answered: read the event
    CHECK(answer->status == 400);
  }
  CHECK(rs.resumes == 0);
}

}  // namespace
}  // namespace ferry::hbone::testing

namespace ferry::hbone::testing {
namespace {

// What resumption costs in memory: a sender that records every byte into the ledger and
// confirms from window credit, against a receiver that consumes all it gets, keeps at most the
// peer's stream window plus its own send buffer; once the stream is idle, less than half the
// stream window (nghttp2 credits in half-window steps), and nothing with prompt credit.
TEST_CASE("the ledger of a busy stream stays within the peer's window plus the send buffer") {
  fakes::FakeCa ca;
  HboneSettings settings;
  Pair p = makePair(ca, {.client_settings = settings, .server_settings = settings});
  auto id = p.client->openStream(*Authority::parse("10.0.0.2:80"));
  REQUIRE(id.ok());
  std::vector<uint8_t> data = sequence(16u << 20, 9);
  const bool prompt = GENERATE(false, true);
  INFO((prompt ? "with" : "without") << " prompt credit");
  RetransmitLedger ledger;
  size_t written = 0;
  size_t max_retained = 0;
  uint64_t consumed = 0;
  for (int round = 0; round < 100000 && written < data.size(); ++round) {
    size_t n =
        p.client->write(*id, slice(data, written, std::min<size_t>(65536, data.size() - written)));
    ledger.record(slice(data, written, n));
    written += n;
    p.pump();
    if (prompt) {
      p.server->setPromptCredit(*id);
    }
    // Measured while the bytes are in flight, and again once the receiver consumed them.
    for (int step = 0; step < 2; ++step) {
      auto confirmed = p.client->confirmedDelivered(*id);
      REQUIRE(confirmed.ok());
      REQUIRE(ledger.confirm(*confirmed).ok());
      max_retained = std::max(max_retained, ledger.retainedBytes());
      if (step == 0) {
        consumed += p.server->peek(*id).size();
        p.server->consume(*id, p.server->peek(*id).size());
        p.server->sendOwedCredit();  // the agent's credit timer
        p.pump();
      }
    }
  }
  REQUIRE(written == data.size());
  CHECK(consumed == data.size());
  CHECK(max_retained > 0);
  CHECK(max_retained <= settings.stream_window + settings.stream_send_buffer);
  CHECK(ledger.retainedBytes() < settings.stream_window / 2);
  if (prompt) {
    CHECK(ledger.retainedBytes() == 0);
    CHECK(max_retained <= settings.stream_window);
  }
  CHECK(ledger.confirmedOffset() + ledger.retainedBytes() == data.size());
  // Measured here (docs/upgrades.md): at most 512 KiB retained without prompt credit, 64 KiB
  // (one write in flight) with it.
}

}  // namespace
}  // namespace ferry::hbone::testing

namespace ferry::hbone::testing {
namespace {

TEST_CASE("prompt credit confirms a few consumed bytes when sent, without it they wait") {
  fakes::FakeCa ca;
  Pair p = makePair(ca);
  auto id = p.client->openStream(*Authority::parse("10.0.0.2:80"));
  REQUIRE(id.ok());
  REQUIRE(p.client->write(*id, bytes("hello")) == 5);
  p.pump();
  p.server->consume(*id, 5);
  p.pump();
  CHECK(*p.client->confirmedDelivered(*id) == 0);  // nghttp2 waits for half the window
  p.server->setPromptCredit(*id);
  REQUIRE(p.client->write(*id, bytes("world!")) == 6);
  p.pump();
  p.server->consume(*id, 3);  // the buffer has not drained: nothing owed yet
  CHECK_FALSE(p.server->creditOwed());
  p.server->sendOwedCredit();
  p.pump();
  CHECK(*p.client->confirmedDelivered(*id) == 0);
  p.server->consume(*id, 3);
  CHECK(p.server->creditOwed());
  p.pump();
  CHECK(*p.client->confirmedDelivered(*id) == 0);  // owed, not sent: no frame per read
  p.server->sendOwedCredit();
  p.pump();
  CHECK(*p.client->confirmedDelivered(*id) == 11);  // every consumed byte, the earlier 5 too
  CHECK_FALSE(p.server->creditOwed());
  // The connection window is still credited as before: a stream can go on for long.
  std::vector<uint8_t> more = sequence(4u << 20, 10);
  size_t written = 0;
  for (int round = 0; round < 10000 && written < more.size(); ++round) {
    written += p.client->write(*id, slice(more, written, more.size() - written));
    p.pump();
    p.server->consume(*id, p.server->peek(*id).size());
    p.pump();
  }
  CHECK(written == more.size());
  CHECK(*p.client->confirmedDelivered(*id) == 11 + more.size());
}

}  // namespace
}  // namespace ferry::hbone::testing
