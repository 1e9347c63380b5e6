// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Differential fuzzing of the HTTP/1 parser against itself: however the bytes are split, the
// messages, bodies and error must be the same (an incremental parser that depends on read
// boundaries is a smuggling bug), and nothing may crash or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "../http/parse_util.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) {
    return 0;
  }
  const uint8_t control = data[0];
  std::string_view wire(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto kind = (control & 0x80) ? ferry::http::Http1Parser::Kind::kResponse
                                     : ferry::http::Http1Parser::Kind::kRequest;
  const size_t step = 1 + (control & 0x1f);
  ferry::http::Http1Limits limits;
  if (control & 0x40) {
    limits.max_start_line = 64;
    limits.max_head_bytes = 256;
    limits.max_headers = 4;
    limits.max_chunk_line = 16;
  }
  const bool eof = control & 0x20;
  auto whole = ferry::http::testing::parseAll(kind, wire, 0, limits, eof);
  auto split = ferry::http::testing::parseAll(kind, wire, step, limits, eof);
  auto bytewise = ferry::http::testing::parseAll(kind, wire, 1, limits, eof);
  FUZZ_CHECK(whole == split);
  FUZZ_CHECK(whole == bytewise);
  if (!whole.error.empty()) {
    FUZZ_CHECK(whole.error_status >= 400 && whole.error_status < 600);
  }
  return 0;
}
