// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/state/interned.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/hash/hash.h"

namespace ferry::agent {
namespace {

// Two fields, compared both; the hash reads one (a hash may leave fields out).
struct Value {
  std::string name;
  std::string note;
  bool operator==(const Value&) const = default;
};
struct NameHash {
  size_t operator()(const Value& v) const { return absl::HashOf(v.name); }
};
using Table = Interned<Value, NameHash>;

TEST_CASE("interned values are shared by equal values only", "[interned]") {
  Table table;
  auto a = table.get({"web", ""});
  auto b = table.get({"web", ""});
  auto c = table.get({"web", "other"});  // same hash, not equal: its own value
  auto d = table.get({"db", ""});
  CHECK(a == b);  // one kept value, not two copies
  CHECK(c != a);
  CHECK(c->note == "other");
  CHECK(d != a);
  CHECK(table.inUse() == 3);
  CHECK(table.kept() == 3);
  a.reset();
  CHECK(table.inUse() == 3);  // b still holds it
  b.reset();
  CHECK(table.inUse() == 2);
}

TEST_CASE("interned values no holder shares are dropped as the table grows", "[interned]") {
  Table table;
  std::vector<std::shared_ptr<const Value>> held;
  for (int i = 0; i < 10; ++i) {
    held.push_back(table.get({"held-" + std::to_string(i), ""}));
  }
  for (int i = 0; i < 1000; ++i) {
    (void)table.get({"gone-" + std::to_string(i), ""});
  }
  // Pruned whenever it reached twice what it kept after the last pass: the held ten stay.
  CHECK(table.kept() <= Table::kPruneAtLeast);
  CHECK(table.inUse() == 10);
  for (int i = 0; i < 10; ++i) {
    CHECK(table.get({"held-" + std::to_string(i), ""}) == held[i]);
  }
}

TEST_CASE("past its size an interned table hands out unshared copies", "[interned]") {
  Table table(/*max_kept=*/2);
  auto a = table.get({"a", ""});
  auto b = table.get({"b", ""});
  auto c1 = table.get({"c", ""});
  auto c2 = table.get({"c", ""});
  CHECK(table.kept() == 2);
  CHECK(c1 != c2);  // neither kept: each its own copy
  CHECK(c1->name == "c");
  CHECK(table.get({"a", ""}) == a);
}

}  // namespace
}  // namespace ferry::agent
