// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Values that many open connections hold alike (their peers and decision for telemetry, the
// attributes they were admitted with for revocation), kept once: a connection holds a share of
// the kept value rather than a copy. An idle connection is memory the agent keeps for as long as
// the app does, and these values were most of it (bench/README.md, "What an idle connection
// holds").
//
// Not thread-safe: a caller shared by threads locks around it.

#include <algorithm>
#include <cstddef>
#include <memory>
#include <utility>

#include "absl/container/flat_hash_set.h"

namespace ferry::agent {

// Values are the same when T's operator== says so: every field, a field added later too (a
// defaulted ==). `Hash` takes a `const T&`; a field it leaves out only costs collisions.
template <typename T, typename Hash>
class Interned {
 public:
  // Kept values past which a new one is handed out unshared.
  explicit Interned(size_t max_kept = 1 << 16) : max_kept_(max_kept) {}

  // The kept value equal to `value`, or `value` itself, kept when there is room. Values no
  // holder shares any more are dropped when the table grows past twice its size after the last
  // such pass (and at least kPruneAtLeast).
  std::shared_ptr<const T> get(T value) {
    if (auto it = kept_.find(value); it != kept_.end()) {
      return *it;
    }
    if (kept_.size() >= prune_at_) {
      absl::erase_if(kept_, [](const auto& shared) { return shared.use_count() == 1; });
      prune_at_ = std::max(kPruneAtLeast, 2 * kept_.size());
    }
    auto made = std::make_shared<const T>(std::move(value));
    if (kept_.size() < max_kept_) {
      kept_.insert(made);
    }
    return made;
  }

  // Kept values some holder still shares; all kept values.
  size_t inUse() const {
    return static_cast<size_t>(
        std::count_if(kept_.begin(), kept_.end(), [](const auto& s) { return s.use_count() > 1; }));
  }
  size_t kept() const { return kept_.size(); }

  static constexpr size_t kPruneAtLeast = 64;

 private:
  static const T& deref(const T& v) { return v; }
  static const T& deref(const std::shared_ptr<const T>& v) { return *v; }
  struct SharedHash {
    using is_transparent = void;
    template <typename V>
    size_t operator()(const V& v) const {
      return Hash()(deref(v));
    }
  };
  struct SharedEqual {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return deref(a) == deref(b);
    }
  };

  size_t max_kept_;
  size_t prune_at_ = kPruneAtLeast;
  absl::flat_hash_set<std::shared_ptr<const T>, SharedHash, SharedEqual> kept_;
};

}  // namespace ferry::agent
