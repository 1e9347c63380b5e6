// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>

// An invariant a fuzz target checks. Aborts (a finding for libFuzzer, a failure for the corpus
// driver) with the condition and location, in every build type (unlike assert).
#define FUZZ_CHECK(cond)                                                                     \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

// The filter targets' input: a control byte (config bits), then client bytes; an optional
// "\xff\xfe" separates them from app bytes fed back as the app's side.
struct FilterFuzzInput {
  uint8_t control = 0;
  std::string_view down;
  std::string_view up;
};

inline std::optional<FilterFuzzInput> splitFilterInput(const uint8_t* data, size_t size) {
  if (size < 1) {
    return std::nullopt;
  }
  FilterFuzzInput in;
  in.control = data[0];
  in.down = std::string_view(reinterpret_cast<const char*>(data + 1), size - 1);
  if (size_t sep = in.down.find("\xff\xfe"); sep != std::string_view::npos) {
    in.up = in.down.substr(sep + 2);
    in.down = in.down.substr(0, sep);
  }
  return in;
}
