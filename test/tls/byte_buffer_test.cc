// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "tls/byte_buffer.h"

#include <catch2/catch.hpp>
#include <string>

namespace ferry::tls {
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

}  // namespace
}  // namespace ferry::tls
