// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Every write size from 1 to 70,000 bytes arrives byte-exact with no protocol error: as the first
// write of a new connection (client and server), and on an already open pooled connection. Issue
// 17: a first DATA frame of 8-16 KiB was written to TLS ahead of the staged client preface,
// SETTINGS and HEADERS, and the server failed the connection ("bad client magic").

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pair.h"

namespace ferry::hbone::testing {
namespace {

constexpr size_t kMaxSize = 70'000;

std::vector<uint8_t> patternBytes(size_t n, uint64_t seed) {
  std::vector<uint8_t> out(n);
  uint64_t state = 0x9E3779B97F4A7C15ull * seed;
  for (uint8_t& b : out) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    b = static_cast<uint8_t>(state);
  }
  return out;
}

const Authority& target() {
  static const Authority a = *Authority::parse("10.244.2.11:8080");
  return a;
}

// Reads everything the stream holds into `out` (cleared first); returns whether it ended.
bool readAll(HboneConnection& conn, StreamId id, std::vector<uint8_t>& out) {
  out.clear();
  uint8_t buf[16384];
  while (true) {
    ReadResult r = conn.read(id, absl::MakeSpan(buf));
    out.insert(out.end(), buf, buf + r.bytes);
    if (r.eof) {
      return true;
    }
    if (r.bytes == 0) {
      return false;
    }
  }
}

// What went wrong with one size, or "" when nothing did.
std::string check(const Pair& p, size_t size, size_t took, const std::vector<uint8_t>& got,
                  bool eof, const std::vector<uint8_t>& payload) {
  if (!p.client_status.ok() || !p.server_status.ok()) {
    return absl::StrCat("client: ", p.client_status.ToString(),
                        ", server: ", p.server_status.ToString());
  }
  for (const std::vector<HboneEvent>* events : {&p.client_events, &p.server_events}) {
    for (const HboneEvent& e : *events) {
      if (e.type == HboneEventType::kClosed && e.error_code != 0) {
        return absl::StrCat("stream ", e.stream, " closed with HTTP/2 error ", e.error_code);
      }
    }
  }
  if (took != size) {
    return absl::StrCat("write() took ", took);
  }
  if (got.size() != size || std::memcmp(got.data(), payload.data(), size) != 0) {
    return absl::StrCat("received ", got.size(), " bytes, not the ", size, " written");
  }
  if (!eof) {
    return "no end of stream";
  }
  return "";
}

// Counts sizes and remembers the first few failures, so 70,000 rows stay cheap to assert.
// Each thread keeps its own.
struct Tally {
  size_t rows = 0;
  size_t failed = 0;
  std::string first_failures;

  void add(size_t size, const std::string& why) {
    ++rows;
    if (why.empty()) {
      return;
    }
    if (++failed <= 5) {
      absl::StrAppend(&first_failures, "size ", size, ": ", why, "\n");
    }
  }
  void merge(const Tally& other) {
    rows += other.rows;
    failed += other.failed;
    first_failures += other.first_failures;
  }
  void report(const char* what) const {
    INFO(what << ": " << failed << " of " << rows << " sizes failed; first:\n" << first_failures);
    CHECK(rows == kMaxSize);
    CHECK(failed == 0);
  }
};

// One new connection whose first writes, both ways, are `size` bytes: the client's leaves with
// its preface, SETTINGS and HEADERS; the server's (queued before its deferred 200, as a
// server-speaks-first app's bytes may be) with its response HEADERS. Returns what went wrong.
// No Catch2 macro here: it runs on several threads.
std::string firstWrites(const PairContexts& contexts, size_t size, const std::vector<uint8_t>& up,
                        const std::vector<uint8_t>& down, std::vector<uint8_t>& got) {
  auto client = HboneClient::create(contexts.client, contexts.server_id);
  auto server =
      HboneServer::create(contexts.server, [](const StreamRequest&) { return kDeferDecision; });
  if (!client.ok() || !server.ok()) {
    return "cannot create the pair";
  }
  Pair p{std::move(*client), std::move(*server)};
  // Opened and written before any byte moved.
  absl::StatusOr<StreamId> id = p.client->openStream(target());
  if (!id.ok()) {
    return id.status().ToString();
  }
  size_t took = p.client->write(*id, absl::MakeConstSpan(up.data(), size));
  p.client->shutdownWrite(*id);
  p.pump();
  if (!p.server->hasStream(*id)) {
    return absl::StrCat("the server has no stream; ", check(p, size, took, got, false, up));
  }
  size_t server_took = p.server->write(*id, absl::MakeConstSpan(down.data(), size));
  p.server->shutdownWrite(*id);
  if (absl::Status s = p.server->respond(*id, 200); !s.ok()) {
    return s.ToString();
  }
  p.pump();
  bool eof = readAll(*p.server, *id, got);
  if (std::string why = check(p, size, took, got, eof, up); !why.empty()) {
    return "client -> server: " + why;
  }
  eof = readAll(*p.client, *id, got);
  if (std::string why = check(p, size, server_took, got, eof, down); !why.empty()) {
    return "server -> client: " + why;
  }
  return "";
}

TEST_CASE("the first writes of a new connection arrive intact at every size, both ways") {
  fakes::FakeCa ca;
  const PairContexts contexts = makeContexts(ca);
  const std::vector<uint8_t> up = patternBytes(kMaxSize, 1);
  const std::vector<uint8_t> down = patternBytes(kMaxSize, 2);
  // A TLS handshake per size is most of the cost: spread the sizes over the cores.
  const size_t threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8);
  std::vector<Tally> tallies(threads);
  std::vector<std::thread> workers;
  for (size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::vector<uint8_t> got;
      for (size_t size = 1 + t; size <= kMaxSize; size += threads) {
        tallies[t].add(size, firstWrites(contexts, size, up, down, got));
      }
    });
  }
  for (std::thread& w : workers) {
    w.join();
  }
  Tally all;
  for (const Tally& t : tallies) {
    all.merge(t);
  }
  all.report("first writes on a new connection");
}

TEST_CASE("a stream on an open pooled connection carries every size both ways intact") {
  fakes::FakeCa ca;
  const std::vector<uint8_t> payload = patternBytes(kMaxSize, 3);
  std::vector<uint8_t> got;
  Tally tally;
  Pair p = makePair(ca);
  for (size_t size = 1; size <= kMaxSize; ++size) {
    p.client_events.clear();
    p.server_events.clear();
    absl::StatusOr<StreamId> id = p.client->openStream(target());
    REQUIRE(id.ok());
    size_t took = p.client->write(*id, absl::MakeConstSpan(payload.data(), size));
    p.client->shutdownWrite(*id);
    p.pump();
    bool eof = readAll(*p.server, *id, got);
    std::string why = check(p, size, took, got, eof, payload);
    if (why.empty()) {  // the echo
      took = p.server->write(*id, absl::MakeConstSpan(got.data(), got.size()));
      p.server->shutdownWrite(*id);
      p.pump();
      eof = readAll(*p.client, *id, got);
      why = check(p, size, took, got, eof, payload);
    }
    tally.add(size, why);
    if (!p.client_status.ok() || !p.server_status.ok()) {
      break;  // the connection is gone: every later size would fail the same way
    }
  }
  tally.report("pooled connection");
  CHECK(p.client->activeStreams() == 0);
}

}  // namespace
}  // namespace ferry::hbone::testing
