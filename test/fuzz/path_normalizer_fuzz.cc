// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Path normalization properties: the output is absolute, has no dot segments, backslashes or
// (when merging) empty segments, uses canonical escapes, and is a fixed point — so the path a
// policy matched is the path every later hop sees, however often it is normalized again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "http/chars.h"
#include "http/path.h"

using ferry::http::EscapedSlashes;
using ferry::http::PathOptions;

namespace {

void checkNormalized(const std::string& p, const PathOptions& o) {
  FUZZ_CHECK(!p.empty() && p[0] == '/');
  FUZZ_CHECK(p.find('\\') == std::string::npos);
  if (o.merge_slashes) {
    FUZZ_CHECK(p.find("//") == std::string::npos);
  }
  // No "." or ".." segment survives.
  size_t i = 0;
  while (i < p.size()) {
    size_t end = p.find('/', i + 1);
    std::string_view seg(p.data() + i + 1, (end == std::string::npos ? p.size() : end) - i - 1);
    FUZZ_CHECK(seg != "." && seg != "..");
    if (end == std::string::npos) {
      break;
    }
    i = end;
  }
  for (size_t k = 0; k < p.size(); ++k) {
    if (p[k] == '%') {
      FUZZ_CHECK(k + 2 < p.size());
      const char a = p[k + 1], b = p[k + 2];
      FUZZ_CHECK(ferry::http::chars::isHex(a) && ferry::http::chars::isHex(b));
      FUZZ_CHECK(!(a >= 'a' && a <= 'f') && !(b >= 'a' && b <= 'f'));
      const char v =
          static_cast<char>(ferry::http::chars::hexValue(a) * 16 + ferry::http::chars::hexValue(b));
      FUZZ_CHECK(!ferry::http::chars::is(v, ferry::http::chars::kUnreserved));
      if (o.escaped_slashes == EscapedSlashes::kDecode) {
        FUZZ_CHECK(v != '/' && v != '\\');
      }
    }
  }
  auto again = ferry::http::normalizePath(p, o);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == p);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (EscapedSlashes e :
       {EscapedSlashes::kKeep, EscapedSlashes::kReject, EscapedSlashes::kDecode}) {
    for (bool merge : {false, true}) {
      PathOptions o{e, merge};
      auto n = ferry::http::normalizePath(in, o);
      if (n.ok()) {
        checkNormalized(*n, o);
      }
      for (std::string_view method : {"GET", "CONNECT", "OPTIONS"}) {
        auto t = ferry::http::parseRequestTarget(method, in, o);
        if (!t.ok()) {
          continue;
        }
        const std::string fwd = t->forwarded();
        auto t2 = ferry::http::parseRequestTarget(method, fwd, o);
        FUZZ_CHECK(t2.ok());
        FUZZ_CHECK(t2->forwarded() == fwd);
        if (!t->path.empty()) {
          checkNormalized(t->path, o);
        }
      }
    }
  }
  return 0;
}
