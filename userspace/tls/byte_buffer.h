// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A contiguous byte queue for the data path: append at the tail, consume from the head. Storage
// is reused (the head is compacted away before growing) and grows geometrically only when the
// queued bytes need it, so steady traffic allocates nothing.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "absl/types/span.h"

namespace ferry::tls {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(ByteBuffer&&) = default;
  ByteBuffer& operator=(ByteBuffer&&) = default;

  size_t size() const { return end_ - begin_; }
  bool empty() const { return end_ == begin_; }
  size_t capacity() const { return capacity_; }
  const uint8_t* data() const { return storage_.get() + begin_; }
  absl::Span<const uint8_t> readable() const { return {data(), size()}; }

  void consume(size_t n) {
    begin_ += n < size() ? n : size();
    if (begin_ == end_) {
      begin_ = end_ = 0;
    }
  }

  // At least `min` writable bytes at the tail (more when already there); fill some, then commit.
  absl::Span<uint8_t> prepare(size_t min) {
    if (capacity_ - end_ < min) {
      makeRoom(min);
    }
    return {storage_.get() + end_, capacity_ - end_};
  }
  void commit(size_t n) { end_ += n; }

  void append(const void* bytes, size_t n) {
    if (n == 0) {
      return;
    }
    absl::Span<uint8_t> space = prepare(n);
    std::memcpy(space.data(), bytes, n);
    commit(n);
  }
  void append(absl::Span<const uint8_t> bytes) { append(bytes.data(), bytes.size()); }

  void clear() { begin_ = end_ = 0; }
  // Gives the memory back (an idle connection should not pin its burst-sized buffers).
  void shrinkIfEmpty() {
    if (empty()) {
      storage_.reset();
      capacity_ = 0;
    }
  }

 private:
  void makeRoom(size_t min) {
    const size_t used = size();
    if (capacity_ - used >= min && used <= capacity_ / 2) {
      std::memmove(storage_.get(), data(), used);  // compaction: cheap, the head is small
    } else {
      size_t next = capacity_ == 0 ? 4096 : capacity_ * 2;
      while (next - used < min) {
        next *= 2;
      }
      std::unique_ptr<uint8_t[]> grown(new uint8_t[next]);
      if (used > 0) {
        std::memcpy(grown.get(), data(), used);
      }
      storage_ = std::move(grown);
      capacity_ = next;
    }
    begin_ = 0;
    end_ = used;
  }

  std::unique_ptr<uint8_t[]> storage_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace ferry::tls
