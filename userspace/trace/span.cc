// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "trace/span.h"

namespace ferry::trace {

bool Sampler::sampleRoot(const std::array<uint8_t, 16>& trace_id) const {
  if (ratio_ >= 1.0) {
    return true;
  }
  if (ratio_ <= 0.0) {
    return false;
  }
  uint64_t low = 0;
  for (size_t i = 8; i < 16; ++i) {
    low = (low << 8) | trace_id[i];
  }
  // 2^64 * ratio, computed in long double so a ratio near 1 does not overflow.
  const auto bound =
      static_cast<uint64_t>(static_cast<long double>(ratio_) * 18446744073709551616.0L);
  return low < bound;
}

}  // namespace ferry::trace
