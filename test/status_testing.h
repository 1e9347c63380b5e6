// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// REQUIRE_OK / CHECK_OK: like REQUIRE(x.ok()) but the failure message shows the status.

#include <catch2/catch.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::testing {

inline const absl::Status& toStatus(const absl::Status& s) {
  return s;
}
template <typename T>
const absl::Status& toStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace ferry::testing

#define REQUIRE_OK(expr)                                                 \
  do {                                                                   \
    const absl::Status ferry_status_ = ::ferry::testing::toStatus(expr); \
    INFO(#expr " -> " << ferry_status_.ToString());                      \
    REQUIRE(ferry_status_.ok());                                         \
  } while (0)

#define CHECK_OK(expr)                                                   \
  do {                                                                   \
    const absl::Status ferry_status_ = ::ferry::testing::toStatus(expr); \
    INFO(#expr " -> " << ferry_status_.ToString());                      \
    CHECK(ferry_status_.ok());                                           \
  } while (0)
