// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The one byte queue of the data path (issue 20 point 3: buffers once): append at the tail,
// consume from the head. Memory is taken only when bytes arrive (an idle connection holds none),
// the head is compacted away before growing, growth is geometric, and shrinkIfEmpty() gives it
// back. The most a burst held is remembered: the next one starts at that size, allocated
// while empty, so a bulk stream that drains between bursts does not copy its bytes through
// every doubling again (issue 19 point 2: those copies were a third of a bulk transfer's CPU).
//
// Storage of the two sizes most buffers take (kInitialBytes, kInitialReadBytes) goes back to a
// small per-thread cache rather than to malloc (issue 19 point 2): a pooled request drains its
// buffers, so each one took and freed a 4 or 16 KiB block, which glibc serves from its bins
// under the arena lock (an L4 request through both agents: 22 calls to malloc before, 12.3 after).
//
// Optionally bounded (a relay's per-direction buffer): full() once `max_bytes` wait, writable()
// then offers no room, so the reader stops reading and backpressure reaches the sender. An
// unbounded buffer (TLS records, HTTP/2 frames: never refused mid-record) is never full();
// prepare()/append() always take every byte, the bound only stops socket reads.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>

#include "absl/types/span.h"

namespace ferry::net {

// Per thread: at most kBlocksKept blocks of each cached size, taken last in first out. Blocks
// may be given back on another thread than took them; a thread's blocks are freed when it ends.
class BlockCache {
 public:
  static constexpr size_t kSmall = 4096;
  static constexpr size_t kLarge = 16 * 1024;
  static constexpr size_t kBlocksKept = 4;

  static uint8_t* take(size_t bytes) {
    if (Stack* s = stackFor(bytes); s != nullptr && s->count > 0) {
      return s->blocks[--s->count];
    }
    return new uint8_t[bytes];
  }
  static void give(uint8_t* block, size_t bytes) {
    if (Stack* s = stackFor(bytes); s != nullptr && s->count < kBlocksKept) {
      s->blocks[s->count++] = block;
      return;
    }
    delete[] block;
  }
  // A unique_ptr deleter that gives its block back.
  struct GiveBack {
    size_t bytes = 0;
    void operator()(uint8_t* block) const { give(block, bytes); }
  };
  // Blocks this thread keeps now (for tests).
  static size_t kept(size_t bytes) {
    Stack* s = stackFor(bytes);
    return s != nullptr ? s->count : 0;
  }

 private:
  struct Stack {
    uint8_t* blocks[kBlocksKept] = {};
    size_t count = 0;
    ~Stack() {
      ended() = true;  // a buffer destroyed later in this thread's exit frees its block itself
      for (size_t i = 0; i < count; ++i) {
        delete[] blocks[i];
      }
      count = 0;
    }
  };
  // Trivially destructible, so still readable while the thread's other thread_locals end.
  static bool& ended() {
    thread_local bool value = false;
    return value;
  }
  static Stack* stackFor(size_t bytes) {
    if (ended()) {
      return nullptr;
    }
    thread_local Stack small, large;
    return bytes == kSmall ? &small : bytes == kLarge ? &large : nullptr;
  }
};

class ByteBuffer {
 public:
  static constexpr size_t kUnbounded = std::numeric_limits<size_t>::max();
  // First allocation of writable() (one socket read's worth) and of prepare().
  static constexpr size_t kInitialReadBytes = BlockCache::kLarge;
  static constexpr size_t kInitialBytes = BlockCache::kSmall;
  // The most a remembered burst size asks for at once: one odd 32 MiB burst must not make every
  // later small write allocate 32 MiB (a stream window and the TLS output high water are 1 MiB
  // and 512 KiB).
  static constexpr size_t kMaxReuseBytes = 1u << 20;

  ByteBuffer() = default;
  explicit ByteBuffer(size_t max_bytes) : max_(max_bytes) {}
  ByteBuffer(ByteBuffer&&) = default;
  ByteBuffer& operator=(ByteBuffer&&) = default;

  size_t size() const { return end_ - begin_; }
  bool empty() const { return end_ == begin_; }
  size_t capacity() const { return capacity_; }
  const uint8_t* data() const { return storage_.get() + begin_; }
  absl::Span<const uint8_t> readable() const { return {data(), size()}; }
  // The bound is reached: the producer must wait (never true when unbounded).
  bool full() const { return size() >= max_; }

  void consume(size_t n) {
    begin_ += n < size() ? n : size();
    if (begin_ == end_) {
      begin_ = end_ = 0;
    }
  }

  // Room for one socket read at the tail (empty when full()), then commitRead(): the first takes
  // kInitialReadBytes (never past the bound), then the head is compacted away or the storage
  // doubled, up to the bound.
  absl::Span<uint8_t> writable() {
    if (full()) {
      return {};
    }
    if (!storage_) {
      const size_t first = reuse_ > kInitialReadBytes ? reuse_ : kInitialReadBytes;
      reallocate(first < max_ ? first : max_);
    } else if (end_ == capacity_) {
      if (begin_ > 0) {
        compact();
      } else {
        grow();
      }
    }
    return {storage_.get() + end_, capacity_ - end_};
  }
  // At least `min` writable bytes at the tail (more when already there), bound or not.
  absl::Span<uint8_t> prepare(size_t min) {
    if (capacity_ - end_ < min) {
      makeRoom(min);
    }
    return {storage_.get() + end_, capacity_ - end_};
  }
  // After prepare(): `n` bytes were written at the tail.
  void commit(size_t n) {
    end_ += n;
    notePeak();
  }
  // After writable(): a read that filled every byte offered means the peer is faster than us,
  // so the storage grows now (up to the bound) rather than at the next read. Not for prepare():
  // TLS output fills exactly what it asked for and must not double for it.
  void commitRead(size_t n) {
    end_ += n;
    notePeak();
    if (end_ == capacity_ && begin_ == 0 && capacity_ < max_) {
      grow();
    }
  }

  void append(const void* bytes, size_t n) {
    if (n == 0) {
      return;
    }
    absl::Span<uint8_t> space = prepare(n);
    std::memcpy(space.data(), bytes, n);
    end_ += n;
    notePeak();
  }
  void append(absl::Span<const uint8_t> bytes) { append(bytes.data(), bytes.size()); }

  void clear() { begin_ = end_ = 0; }
  // Gives the memory back (an idle connection should not pin its burst-sized buffers).
  void shrinkIfEmpty() {
    if (empty()) {
      if (capacity_ > 0) {
        reuse_ = peak_ < kMaxReuseBytes ? peak_ : kMaxReuseBytes;
        peak_ = 0;
      }
      storage_.reset();
      capacity_ = 0;
      begin_ = end_ = 0;
    }
  }

 private:
  void notePeak() {
    if (end_ - begin_ > peak_) {
      peak_ = end_ - begin_;
    }
  }
  void compact() {
    const size_t used = size();
    std::memmove(storage_.get(), data(), used);
    begin_ = 0;
    end_ = used;
  }
  void grow() {
    size_t next = capacity_ <= max_ / 2 ? capacity_ * 2 : max_;
    if (next > capacity_) {
      reallocate(next);
    }
  }
  void makeRoom(size_t min) {
    const size_t used = size();
    if (capacity_ - used >= min && used <= capacity_ / 2) {
      compact();  // cheap: the head is small
      return;
    }
    size_t next = capacity_ != 0 ? capacity_ * 2 : reuse_ > kInitialBytes ? reuse_ : kInitialBytes;
    while (next - used < min) {
      next *= 2;
    }
    reallocate(next);
  }
  void reallocate(size_t next) {
    const size_t used = size();
    Storage grown(BlockCache::take(next), BlockCache::GiveBack{next});
    if (used > 0) {
      std::memcpy(grown.get(), data(), used);
    }
    storage_ = std::move(grown);
    capacity_ = next;
    begin_ = 0;
    end_ = used;
  }

  using Storage = std::unique_ptr<uint8_t[], BlockCache::GiveBack>;

  size_t max_ = kUnbounded;
  Storage storage_;
  size_t capacity_ = 0;
  size_t peak_ = 0;   // the most bytes held since the storage was taken
  size_t reuse_ = 0;  // peak_ when shrinkIfEmpty() last gave the storage back
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace ferry::net
