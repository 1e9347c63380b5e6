// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A byte buffer for one direction of one connection. Memory is taken only when bytes arrive
// (an idle connection holds none), grows by doubling while a reader keeps filling it, never
// past its bound (that is when the reader stops reading: backpressure), and is given back once
// drained. No allocation per byte or per read.

#include <cstddef>
#include <cstring>
#include <memory>
#include <utility>

namespace ferry::agent {

class Buffer {
 public:
  static constexpr size_t kInitialBytes = 16 * 1024;

  explicit Buffer(size_t max_bytes) : max_(max_bytes) {}

  size_t readable() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  const char* data() const { return data_.get() + begin_; }
  size_t capacity() const { return capacity_; }
  // No more room and no more growth: the producer must wait.
  bool full() const { return readable() >= max_; }

  void consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) {
      begin_ = end_ = 0;
    }
  }

  // Space to read into; empty span when full().
  std::pair<char*, size_t> writable() {
    if (full()) {
      return {nullptr, 0};
    }
    if (!data_) {
      capacity_ = kInitialBytes < max_ ? kInitialBytes : max_;
      data_.reset(new char[capacity_]);
    } else if (end_ == capacity_) {
      if (begin_ > 0) {
        std::memmove(data_.get(), data_.get() + begin_, readable());
        end_ -= begin_;
        begin_ = 0;
      } else {
        grow();
      }
    }
    return {data_.get() + end_, capacity_ - end_};
  }
  void commit(size_t n) {
    end_ += n;
    // A read that filled every byte offered means the peer is faster than us: grow next time.
    if (end_ == capacity_ && begin_ == 0 && capacity_ < max_) {
      grow();
    }
  }
  // Appends up to `n` bytes; returns how many fitted.
  size_t append(const char* bytes, size_t n) {
    size_t done = 0;
    while (done < n) {
      auto [ptr, room] = writable();
      if (room == 0) {
        break;
      }
      size_t take = room < n - done ? room : n - done;
      std::memcpy(ptr, bytes + done, take);
      end_ += take;
      done += take;
    }
    return done;
  }
  // Gives memory back when nothing is buffered (called when a connection goes idle).
  void shrink() {
    if (empty() && data_) {
      data_.reset();
      capacity_ = 0;
    }
  }

 private:
  void grow() {
    size_t next = capacity_ * 2 < max_ ? capacity_ * 2 : max_;
    if (next <= capacity_) {
      return;
    }
    std::unique_ptr<char[]> bigger(new char[next]);
    std::memcpy(bigger.get(), data_.get() + begin_, readable());
    end_ -= begin_;
    begin_ = 0;
    data_ = std::move(bigger);
    capacity_ = next;
  }

  size_t max_;
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace ferry::agent
