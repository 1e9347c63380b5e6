// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Client and server exchanging data in memory: concurrency, half-close, integrity, flow
// control and backpressure.

#include <openssl/evp.h>

#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "pair.h"

namespace ferry::hbone::testing {
namespace {

// A deterministic byte source and a SHA-256 of everything it produced.
class Source {
 public:
  Source(uint64_t seed, size_t total) : state_(seed * 0x9E3779B97F4A7C15ull + 1), total_(total) {
    ctx_ = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  }
  ~Source() { EVP_MD_CTX_free(ctx_); }
  size_t remaining() const { return total_ - produced_; }
  size_t total() const { return total_; }
  // Fills `chunk` with the next bytes (not yet counted as produced).
  absl::Span<const uint8_t> peek(size_t max) {
    size_t n = std::min(max, remaining());
    if (pending_.size() < n) {
      size_t old = pending_.size();
      pending_.resize(n);
      for (size_t i = old; i < n; ++i) {
        state_ ^= state_ << 13;
        state_ ^= state_ >> 7;
        state_ ^= state_ << 17;
        pending_[i] = static_cast<uint8_t>(state_);
      }
    }
    return {pending_.data(), n};
  }
  void advance(size_t n) {
    EVP_DigestUpdate(ctx_, pending_.data(), n);
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(n));
    produced_ += n;
  }
  std::string digest() {
    unsigned char md[32];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    return std::string(reinterpret_cast<char*>(md), len);
  }

 private:
  uint64_t state_;
  size_t total_;
  size_t produced_ = 0;
  std::vector<uint8_t> pending_;
  EVP_MD_CTX* ctx_;
};

class Sink {
 public:
  Sink() {
    ctx_ = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  }
  ~Sink() { EVP_MD_CTX_free(ctx_); }
  void add(const uint8_t* data, size_t n) {
    EVP_DigestUpdate(ctx_, data, n);
    received += n;
  }
  std::string digest() {
    unsigned char md[32];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    return std::string(reinterpret_cast<char*>(md), len);
  }
  size_t received = 0;
  bool eof = false;

 private:
  EVP_MD_CTX* ctx_;
};

// One direction of one stream at the app side: write what the connection accepts, shut down
// when done; read everything available.
struct Endpoint {
  std::unique_ptr<Source> out;
  Sink in;
  bool shut = false;

  // Returns whether anything happened.
  bool step(HboneConnection& conn, StreamId id, size_t read_chunk) {
    bool progress = false;
    while (out->remaining() > 0) {
      absl::Span<const uint8_t> chunk = out->peek(64 * 1024);
      size_t n = conn.write(id, chunk);
      if (n == 0) {
        break;
      }
      out->advance(n);
      progress = true;
    }
    if (out->remaining() == 0 && !shut) {
      conn.shutdownWrite(id);
      shut = true;
      progress = true;
    }
    uint8_t buf[32 * 1024];
    while (!in.eof) {
      ReadResult r = conn.read(id, absl::MakeSpan(buf, std::min(read_chunk, sizeof(buf))));
      in.add(buf, r.bytes);
      in.eof = r.eof;
      if (r.bytes == 0) {
        break;
      }
      progress = true;
    }
    return progress;
  }
};

struct Exchange {
  Endpoint client;
  Endpoint server;
};

// Runs every stream to completion in both directions (bounded rounds).
void runToCompletion(Pair& p, std::map<StreamId, Exchange>& streams,
                     size_t read_chunk = 32 * 1024) {
  for (int round = 0; round < 200000; ++round) {
    bool progress = p.pump() > 0;
    for (auto& [id, ex] : streams) {
      progress |= ex.client.step(*p.client, id, read_chunk);
      if (p.server->hasStream(id) || ex.server.shut) {
        progress |= ex.server.step(*p.server, id, read_chunk);
      }
    }
    bool done = true;
    for (auto& [id, ex] : streams) {
      done &= ex.client.in.eof && ex.server.in.eof && ex.client.shut && ex.server.shut;
    }
    if (done && p.pump() == 0) {
      return;
    }
    if (!progress && p.pump() == 0) {
      FAIL("exchange stalled at round " << round);
    }
  }
  FAIL("exchange did not finish");
}

TEST_CASE("several concurrent streams carry data both ways with half-close") {
  fakes::FakeCa ca;
  std::vector<std::string> authorities;
  PairOptions options;
  options.accept = [&](const StreamRequest& req) {
    authorities.push_back(req.authority.toString());
    CHECK(req.peer.uri() == "spiffe://cluster.local/ns/shop/sa/cart");
    return 200;
  };
  Pair p = makePair(ca, std::move(options));
  CHECK(p.client->peer().uri() == "spiffe://cluster.local/ns/shop/sa/db");
  CHECK(p.server->peer().uri() == "spiffe://cluster.local/ns/shop/sa/cart");

  std::map<StreamId, Exchange> streams;
  for (int i = 0; i < 8; ++i) {
    auto target = Authority::parse(i % 2 == 0 ? "10.244.1.11:8080" : "[fd00:244::2:11]:9090");
    REQUIRE(target.ok());
    absl::StatusOr<StreamId> id = p.client->openStream(*target);
    REQUIRE(id.ok());
    Exchange& ex = streams[*id];
    // Sizes differ per stream and direction; one direction of stream 0 is empty.
    ex.client.out = std::make_unique<Source>(2 * i, i == 0 ? 0 : 37'000 * i + 11);
    ex.server.out = std::make_unique<Source>(2 * i + 1, 91'000 * (8 - i));
  }
  runToCompletion(p, streams);

  CHECK(authorities.size() == 8);
  CHECK(std::count(authorities.begin(), authorities.end(), "[fd00:244::2:11]:9090") == 4);
  for (auto& [id, ex] : streams) {
    INFO("stream " << id);
    CHECK(p.client->responseStatus(id) == 0);  // released after the clean close
    CHECK(ex.server.in.received == ex.client.out->total());
    CHECK(ex.client.in.received == ex.server.out->total());
    CHECK(ex.server.in.digest() == ex.client.out->digest());
    CHECK(ex.client.in.digest() == ex.server.out->digest());
    CHECK(Pair::has(p.client_events, HboneEventType::kResponse, id));
    CHECK(Pair::has(p.server_events, HboneEventType::kStreamOpened, id));
    CHECK(Pair::has(p.client_events, HboneEventType::kClosed, id));
    CHECK(Pair::has(p.server_events, HboneEventType::kClosed, id));
    CHECK_FALSE(p.client->hasStream(id));
    CHECK_FALSE(p.server->hasStream(id));
  }
  for (const HboneEvent& e : p.client_events) {
    if (e.type == HboneEventType::kClosed) {
      CHECK(e.error_code == 0);
    }
  }
  CHECK(p.client->activeStreams() == 0);
  CHECK(p.server->activeStreams() == 0);
  // Idle again: nothing is left buffered anywhere.
  CHECK(p.client->bufferedBytes() == 0);
  CHECK(p.server->bufferedBytes() == 0);
}

TEST_CASE("16 MiB each way arrives intact (sha256)") {
  fakes::FakeCa ca;
  Pair p = makePair(ca);
  auto target = Authority::parse("10.244.2.11:5201");
  REQUIRE(target.ok());
  absl::StatusOr<StreamId> id = p.client->openStream(*target);
  REQUIRE(id.ok());
  std::map<StreamId, Exchange> streams;
  constexpr size_t k16MiB = 16u << 20;
  streams[*id].client.out = std::make_unique<Source>(7, k16MiB);
  streams[*id].server.out = std::make_unique<Source>(8, k16MiB);
  // Odd read sizes exercise partial consumption and window updates of every size.
  runToCompletion(p, streams, 7919);
  Exchange& ex = streams[*id];
  CHECK(ex.server.in.received == k16MiB);
  CHECK(ex.client.in.received == k16MiB);
  CHECK(ex.server.in.digest() == ex.client.out->digest());
  CHECK(ex.client.in.digest() == ex.server.out->digest());
}

TEST_CASE("a reader that stops reading stalls the writer within a bound") {
  fakes::FakeCa ca;
  PairOptions options;
  options.server_settings.stream_window = 256 * 1024;
  options.client_settings.stream_send_buffer = 64 * 1024;
  Pair p = makePair(ca, options);
  auto target = Authority::parse("10.244.2.11:80");
  absl::StatusOr<StreamId> id = p.client->openStream(*target);
  REQUIRE(id.ok());
  p.pump();

  Source source(1, 64u << 20);
  size_t accepted = 0;
  for (int i = 0; i < 10000; ++i) {
    size_t n = p.client->write(*id, source.peek(16 * 1024));
    source.advance(n);
    accepted += n;
    if (p.pump() == 0 && n == 0) {
      break;
    }
  }
  // The server app read nothing: the peer's window, plus the client's send buffer, plus what
  // is in flight, is all that may exist.
  const size_t bound = 256 * 1024 + 64 * 1024 + 64 * 1024;
  CHECK(accepted > 256 * 1024);
  CHECK(accepted < bound);
  CHECK(p.server->bufferedBytes(*id) <= 256 * 1024);
  CHECK(p.client->bufferedBytes(*id) <= 64 * 1024);
  CHECK(p.client->write(*id, source.peek(1)) == 0);
  CHECK(Pair::has(p.server_events, HboneEventType::kReadable, *id));

  // The reader resumes: the writer is told it may write again, and everything arrives.
  p.client_events.clear();
  Sink sink;
  uint8_t buf[16384];
  for (int i = 0; i < 100000 && sink.received < (8u << 20); ++i) {
    ReadResult r = p.server->read(*id, absl::MakeSpan(buf));
    sink.add(buf, r.bytes);
    size_t n = p.client->write(*id, source.peek(16 * 1024));
    source.advance(n);
    p.pump();
    CHECK(p.server->bufferedBytes(*id) <= 256 * 1024);
  }
  CHECK(sink.received >= (8u << 20));
  CHECK(Pair::has(p.client_events, HboneEventType::kWritable, *id));
}

TEST_CASE("a socket that takes nothing stops frame production at the high-water mark") {
  fakes::FakeCa ca;
  PairOptions options;
  options.client_settings.output_high_water = 128 * 1024;
  options.client_settings.stream_send_buffer = 64 * 1024;
  Pair p = makePair(ca, options);
  absl::StatusOr<StreamId> id = p.client->openStream(*Authority::parse("10.244.2.11:80"));
  REQUIRE(id.ok());
  p.pump();
  p.hold_client_to_server = true;
  Source source(2, 64u << 20);
  size_t accepted = 0;
  for (int i = 0; i < 1000; ++i) {
    size_t n = p.client->write(*id, source.peek(16 * 1024));
    source.advance(n);
    accepted += n;
    p.pump();
    if (n == 0) {
      break;
    }
  }
  CHECK(p.client->networkOut().size() < 128 * 1024 + 32 * 1024);
  CHECK(p.client->bufferedBytes() < 128 * 1024 + 32 * 1024 + 64 * 1024);
  CHECK(accepted < 128 * 1024 + 32 * 1024 + 64 * 1024);
  p.hold_client_to_server = false;
  p.pump();
  CHECK(p.client->write(*id, source.peek(16 * 1024)) > 0);
}

// TLS records in `out` (each a 5-byte header and its length); fails on a partial record.
size_t countRecords(const net::ByteBuffer& out) {
  absl::Span<const uint8_t> b = out.readable();
  size_t pos = 0;
  size_t records = 0;
  while (pos + 5 <= b.size()) {
    pos += 5 + ((size_t{b[pos + 3]} << 8) | b[pos + 4]);
    ++records;
  }
  REQUIRE(pos == b.size());
  return records;
}

TEST_CASE("with batch_output, what several streams queue leaves in one TLS record at produce()") {
  const bool batch = GENERATE(false, true);
  INFO("batch_output " << batch);
  fakes::FakeCa ca;
  PairOptions options;
  options.client_settings.batch_output = batch;
  options.server_settings.batch_output = batch;
  Pair p = makePair(ca, std::move(options));
  auto target = Authority::parse("10.244.1.11:8080");
  REQUIRE(target.ok());
  std::vector<StreamId> ids;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<StreamId> id = p.client->openStream(*target);
    REQUIRE(id.ok());
    ids.push_back(*id);
  }
  // Opening queued the requests' HEADERS: encoded at once, or only by produce().
  CHECK(p.client->networkOut().empty() == batch);
  REQUIRE(p.client->produce().ok());
  p.pump();
  for (StreamId id : ids) {
    REQUIRE(p.client->responseStatus(id) == 200);
  }

  HboneConnection* sides[] = {p.client.get(), p.server.get()};
  for (HboneConnection* from : sides) {
    HboneConnection* to =
        from == p.client.get() ? static_cast<HboneConnection*>(p.server.get()) : p.client.get();
    INFO((from == p.client.get() ? "client" : "server") << " writes");
    REQUIRE(from->networkOut().empty());
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::string message = "message " + std::to_string(i) + std::string(100, 'x');
      REQUIRE(from->write(ids[i], bytes(message)) == message.size());
    }
    // One record per write() as it came, or one for the whole round.
    CHECK(countRecords(from->networkOut()) == (batch ? 0u : ids.size()));
    REQUIRE(from->produce().ok());
    CHECK(countRecords(from->networkOut()) == (batch ? 1u : ids.size()));
    p.pump();
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::string message = "message " + std::to_string(i) + std::string(100, 'x');
      std::string got(message.size() + 1, '\0');
      ReadResult r =
          to->read(ids[i], absl::MakeSpan(reinterpret_cast<uint8_t*>(got.data()), got.size()));
      got.resize(r.bytes);
      CHECK(got == message);
    }
    // The reads' window credit (if any) is queued too, and goes at the next produce().
    REQUIRE(to->produce().ok());
    p.pump();
  }
  // The ends: a stream closes when its second END_STREAM goes out, which with batch_output
  // happens in produce(), so its kClosed waits there for the owner to look (hasEvents()).
  for (StreamId id : ids) {
    p.client->shutdownWrite(id);
  }
  REQUIRE(p.client->produce().ok());
  p.pump();
  REQUIRE_FALSE(p.server->hasEvents());
  for (StreamId id : ids) {
    p.server->shutdownWrite(id);
  }
  CHECK(p.server->hasEvents() == !batch);
  REQUIRE(p.server->produce().ok());
  REQUIRE(p.server->hasEvents());
  std::vector<HboneEvent> events;
  p.server->takeEvents(events);
  for (StreamId id : ids) {
    CHECK(Pair::has(events, HboneEventType::kClosed, id));
  }
  CHECK(p.client_status.ok());
  CHECK(p.server_status.ok());
}

TEST_CASE("reset aborts a stream on both sides with its error code") {
  fakes::FakeCa ca;
  Pair p = makePair(ca);
  absl::StatusOr<StreamId> id = p.client->openStream(*Authority::parse("10.244.2.11:80"));
  REQUIRE(id.ok());
  REQUIRE(p.client->write(*id, bytes("partial")) == 7);
  p.pump();
  p.client->reset(*id);
  p.pump();
  bool server_saw_cancel = false;
  for (const HboneEvent& e : p.server_events) {
    server_saw_cancel |=
        e.type == HboneEventType::kClosed && e.stream == *id && e.error_code == NGHTTP2_CANCEL;
  }
  CHECK(server_saw_cancel);
  CHECK_FALSE(p.server->hasStream(*id));
  CHECK_FALSE(p.client->hasStream(*id));
  // The connection itself is fine.
  CHECK(p.client->openStream(*Authority::parse("10.244.2.11:80")).ok());
}

TEST_CASE("an open stream holds no buffer memory once both directions are drained") {
  // 10,000 idle connections through an agent are 10,000 idle streams: what each keeps between
  // bursts is what the agent's per-connection memory is made of.
  fakes::FakeCa ca;
  Pair p = makePair(ca);
  absl::StatusOr<StreamId> id = p.client->openStream(*Authority::parse("10.244.2.11:80"));
  REQUIRE(id.ok());
  const std::string request = "GET / HTTP/1.1\r\nHost: web\r\n\r\n";
  const std::string response(1024, 'r');
  REQUIRE(p.client->write(*id, bytes(request)) == request.size());
  p.pump();
  CHECK(p.server->heldBytes(*id) > 0);  // the request waits in the server's receive buffer
  uint8_t buf[4096];
  ReadResult got = p.server->read(*id, absl::MakeSpan(buf));
  CHECK(std::string(reinterpret_cast<char*>(buf), got.bytes) == request);
  REQUIRE(p.server->write(*id, bytes(response)) == response.size());
  p.pump();
  got = p.client->read(*id, absl::MakeSpan(buf));
  CHECK(got.bytes == response.size());
  CHECK_FALSE(got.eof);
  p.pump();

  REQUIRE(p.client->hasStream(*id));  // still open, both ways
  REQUIRE(p.server->hasStream(*id));
  CHECK(p.client->heldBytes(*id) == 0);
  CHECK(p.server->heldBytes(*id) == 0);
  // And it still works after giving the memory back.
  REQUIRE(p.client->write(*id, bytes(request)) == request.size());
  p.pump();
  got = p.server->read(*id, absl::MakeSpan(buf));
  CHECK(got.bytes == request.size());
  CHECK(p.server->heldBytes(*id) == 0);
}

TEST_CASE(
    "discardInput ends a stream like a socket's close: queued bytes go, later input is dropped") {
  // The inbound HTTP relay reads the stream itself; when it closes cleanly (a response with
  // Connection: close) while the client still sends, the client must get the whole answer and
  // its end, and must not stall on a window nobody will credit.
  fakes::FakeCa ca;
  PairOptions options;
  options.server_settings.stream_window = 64 * 1024;
  Pair p = makePair(ca, options);
  absl::StatusOr<StreamId> id = p.client->openStream(*Authority::parse("10.244.2.11:80"));
  REQUIRE(id.ok());
  REQUIRE(p.client->write(*id, bytes("request")) == 7);
  p.pump();
  const std::string answer(100 * 1024, 'a');  // more than one window of the client's
  size_t queued = p.server->write(*id, bytes(answer));
  REQUIRE(queued == answer.size());
  p.server->discardInput(*id);
  p.server->shutdownWrite(*id);
  CHECK_FALSE(p.server->remoteEnded(*id));
  // The client reads the whole answer and its end while it keeps sending far more than the
  // server's window: nothing it sends is stalled or delivered.
  Sink sink;
  Source source(3, 1u << 20);
  uint8_t buf[16384];
  const size_t past_window = 4 * 64 * 1024;
  for (int i = 0; i < 10000 && !(sink.eof && source.total() - source.remaining() > past_window);
       ++i) {
    size_t n = p.client->write(*id, source.peek(16 * 1024));
    source.advance(n);
    p.pump();
    if (!sink.eof) {
      ReadResult r = p.client->read(*id, absl::MakeSpan(buf));
      sink.add(buf, r.bytes);
      sink.eof = r.eof;
    }
  }
  CHECK(sink.eof);
  CHECK(sink.received == answer.size());
  CHECK(source.total() - source.remaining() > past_window);  // four windows' worth went
  CHECK(p.server->bufferedBytes(*id) == 0);                  // and none of it was kept
  CHECK(p.server->read(*id, absl::MakeSpan(buf)).bytes == 0);
  // The client ends its side: the stream closes cleanly on both.
  p.client->shutdownWrite(*id);
  p.pump();
  CHECK_FALSE(p.server->hasStream(*id));
  CHECK_FALSE(p.client->hasStream(*id));
  bool clean = false;
  for (const HboneEvent& e : p.server_events) {
    clean |= e.type == HboneEventType::kClosed && e.stream == *id && e.error_code == 0;
  }
  CHECK(clean);
}

}  // namespace
}  // namespace ferry::hbone::testing
