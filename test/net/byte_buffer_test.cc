// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "net/byte_buffer.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace ferry::net {
namespace {

std::string str(const ByteBuffer& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

TEST_CASE("ByteBuffer queues bytes in order across consume, compaction and growth") {
  ByteBuffer b;
  CHECK(b.empty());
  b.append("hello ", 6);
  b.append("world", 5);
  CHECK(str(b) == "hello world");
  b.consume(6);
  CHECK(str(b) == "world");
  b.consume(100);  // over-consuming empties it, never underflows
  CHECK(b.empty());
  CHECK(b.size() == 0);

  std::string expected;
  for (int i = 0; i < 2000; ++i) {
    std::string piece = std::to_string(i) + ",";
    b.append(piece.data(), piece.size());
    expected += piece;
    if (i % 3 == 0) {
      b.consume(2);
      expected.erase(0, 2);
    }
  }
  CHECK(str(b) == expected);
}

TEST_CASE("ByteBuffer reuses its storage when traffic does not need more") {
  ByteBuffer b;
  std::string chunk(1000, 'x');
  b.append(chunk.data(), chunk.size());
  const size_t capacity = b.capacity();
  const uint8_t* storage = b.data();
  for (int i = 0; i < 10000; ++i) {
    b.consume(chunk.size());
    b.append(chunk.data(), chunk.size());
  }
  CHECK(b.capacity() == capacity);
  CHECK(b.data() == storage);

  // prepare/commit writes in place; the head is compacted away instead of growing.
  b.consume(500);
  absl::Span<uint8_t> space = b.prepare(capacity - 600);
  CHECK(space.size() >= capacity - 600);
  b.commit(10);
  CHECK(b.size() == 510);
  CHECK(b.capacity() == capacity);

  b.clear();
  b.shrinkIfEmpty();
  CHECK(b.capacity() == 0);
}

TEST_CASE("after giving its storage back, the next burst starts at what the last one held") {
  ByteBuffer b;
  const std::string chunk(16 * 1024, 'b');
  auto burst = [&](int chunks) {
    for (int i = 0; i < chunks; ++i) {
      b.append(chunk.data(), chunk.size());
    }
    const size_t held = b.size();
    b.consume(held);
    b.shrinkIfEmpty();
    CHECK(b.capacity() == 0);  // idle: no memory held
    return held;
  };
  const size_t held = burst(16);  // 256 KiB, grown by doubling from the initial size
  // The next burst's first bytes get room for the whole last burst at once, so none of its
  // bytes are copied through the doublings again; its content is unchanged.
  b.append("next", 4);
  CHECK(b.capacity() >= held);
  CHECK(str(b) == "next");
  b.consume(4);
  b.shrinkIfEmpty();
  // An odd huge burst is remembered only up to kMaxReuseBytes.
  burst(static_cast<int>(4 * ByteBuffer::kMaxReuseBytes / chunk.size()));
  b.append("next", 4);
  CHECK(b.capacity() == ByteBuffer::kMaxReuseBytes);
  b.consume(4);
  b.shrinkIfEmpty();
  // A small burst brings the next start back down: a quiet stream does not keep a big size.
  b.append("tiny", 4);
  CHECK(b.capacity() == ByteBuffer::kInitialBytes);
  b.consume(4);
  b.shrinkIfEmpty();
  // Reads (writable/commitRead) use the remembered size too, never past a bound.
  ByteBuffer bounded(64 * 1024);
  for (int i = 0; i < 8 && !bounded.full(); ++i) {
    absl::Span<uint8_t> room = bounded.writable();
    REQUIRE_FALSE(room.empty());
    std::memset(room.data(), 'r', room.size());
    bounded.commitRead(room.size());
  }
  CHECK(bounded.full());
  bounded.consume(bounded.size());
  bounded.shrinkIfEmpty();
  CHECK(bounded.writable().size() == 64 * 1024);
}

TEST_CASE("a bounded ByteBuffer grows with reads up to its bound, then offers no room") {
  ByteBuffer b(64 * 1024);
  CHECK(b.capacity() == 0);  // nothing taken before the first read
  CHECK_FALSE(b.full());
  size_t total = 0;
  while (true) {
    absl::Span<uint8_t> room = b.writable();
    if (room.empty()) {
      break;
    }
    std::memset(room.data(), 'y', room.size());
    b.commitRead(room.size());  // every byte offered taken: the next read gets more room
    total += room.size();
    REQUIRE(total <= 64 * 1024);
  }
  CHECK(total == 64 * 1024);
  CHECK(b.full());
  CHECK(b.capacity() == 64 * 1024);  // 16 KiB, 32 KiB, 64 KiB: never past the bound

  // Draining a little makes room again by compaction, not growth.
  b.consume(1000);
  CHECK_FALSE(b.full());
  CHECK(b.writable().size() == 1000);
  CHECK(b.capacity() == 64 * 1024);

  b.consume(b.size());
  CHECK(b.empty());
  b.shrinkIfEmpty();
  CHECK(b.capacity() == 0);
}

TEST_CASE("a bounded ByteBuffer whose bound is under one read's worth allocates only the bound") {
  ByteBuffer b(1000);
  CHECK(b.writable().size() == 1000);
  b.commitRead(1000);
  CHECK(b.full());
  CHECK(b.writable().empty());
}

TEST_CASE("appends past the bound are never refused (a TLS record is taken whole)") {
  ByteBuffer b(1024);
  std::string record(5000, 'r');
  b.append(record.data(), record.size());
  CHECK(b.size() == 5000);
  CHECK(b.full());
  CHECK(b.writable().empty());
  CHECK(str(b) == record);
}

TEST_CASE("filling exactly what prepare() gave never grows the storage (TLS records)") {
  ByteBuffer b;
  absl::Span<uint8_t> space = b.prepare(ByteBuffer::kInitialBytes);
  REQUIRE(space.size() == ByteBuffer::kInitialBytes);
  b.commit(space.size());
  CHECK(b.capacity() == ByteBuffer::kInitialBytes);
  b.consume(b.size());
  b.prepare(100);
  b.commit(100);
  CHECK(b.capacity() == ByteBuffer::kInitialBytes);
}

TEST_CASE("an unbounded ByteBuffer is never full and its reads keep growing") {
  ByteBuffer b;
  for (int i = 0; i < 6; ++i) {
    absl::Span<uint8_t> room = b.writable();
    REQUIRE_FALSE(room.empty());
    b.commitRead(room.size());
  }
  CHECK_FALSE(b.full());
  CHECK(b.size() > 64 * 1024);
}

TEST_CASE("a drained buffer's 4 and 16 KiB blocks are taken again from the thread's cache") {
  const size_t small_before = BlockCache::kept(BlockCache::kSmall);
  const uint8_t* first = nullptr;
  {
    ByteBuffer b;
    b.append("request", 7);
    REQUIRE(b.capacity() == BlockCache::kSmall);
    first = b.data();
    b.consume(7);
    b.shrinkIfEmpty();  // gives the block to the cache
    CHECK(b.capacity() == 0);
    // The block it took (from the cache when it kept one) is back on top.
    CHECK(BlockCache::kept(BlockCache::kSmall) == std::max<size_t>(small_before, 1));
  }
  ByteBuffer next;
  next.append("next", 4);
  CHECK(next.data() == first);  // last in, first out: the same block, no malloc
  CHECK(std::string(reinterpret_cast<const char*>(next.data()), 4) == "next");

  // A read buffer's 16 KiB block comes back the same way.
  ByteBuffer reader;
  absl::Span<uint8_t> room = reader.writable();
  REQUIRE(room.size() == BlockCache::kLarge);
  const uint8_t* read_block = room.data();
  reader.shrinkIfEmpty();
  CHECK(reader.writable().data() == read_block);
}

TEST_CASE("the cache keeps at most kBlocksKept blocks per size and none of other sizes") {
  std::vector<uint8_t*> taken;
  for (size_t i = 0; i < BlockCache::kBlocksKept + 3; ++i) {
    taken.push_back(BlockCache::take(BlockCache::kLarge));
  }
  CHECK(BlockCache::kept(BlockCache::kLarge) == 0);
  for (uint8_t* block : taken) {
    BlockCache::give(block, BlockCache::kLarge);  // the last three are freed
  }
  CHECK(BlockCache::kept(BlockCache::kLarge) == BlockCache::kBlocksKept);
  BlockCache::give(BlockCache::take(8192), 8192);
  CHECK(BlockCache::kept(8192) == 0);

  // A buffer that grew past the cached sizes frees its storage to malloc.
  ByteBuffer big;
  std::string bytes(100 * 1024, 'x');
  big.append(bytes.data(), bytes.size());
  CHECK(big.capacity() >= bytes.size());
  big.consume(bytes.size());
  big.shrinkIfEmpty();
  CHECK(BlockCache::kept(BlockCache::kLarge) == BlockCache::kBlocksKept);
}

TEST_CASE("blocks given back on another thread, and a thread's cache at its end, are freed") {
  // Run under ASan + UBSan in CI: a double free or a leak here fails the sanitizer build.
  std::vector<ByteBuffer> made(BlockCache::kBlocksKept * 2);
  std::thread maker([&] {
    for (ByteBuffer& b : made) {
      b.append("x", 1);
    }
    ByteBuffer local;
    local.append("y", 1);
    local.consume(1);
    local.shrinkIfEmpty();
    CHECK(BlockCache::kept(BlockCache::kSmall) == 1);
  });  // its cache of one block is freed as it ends
  maker.join();
  std::thread ender([&] {
    for (ByteBuffer& b : made) {
      b.consume(1);
      b.shrinkIfEmpty();
    }
    CHECK(BlockCache::kept(BlockCache::kSmall) == BlockCache::kBlocksKept);
  });
  ender.join();
  for (const ByteBuffer& b : made) {
    CHECK(b.capacity() == 0);
  }
}

}  // namespace
}  // namespace ferry::net
