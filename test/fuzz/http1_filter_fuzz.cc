// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The filter's promise, fuzzed: whatever a client sends, every byte forwarded to the app parses
// cleanly under the strict parser, each forwarded request's target is already normalized, and
// no forwarded request is one the policy (DENY /admin*) refused.
//
// Input: control byte, then client bytes; an optional "\xff\xfe" separates client bytes from
// app bytes fed back as responses.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "http/authority.h"
#include "http/http1_filter.h"

using namespace ferry::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto input = splitFilterInput(data, size);
  if (!input) {
    return 0;
  }
  const uint8_t control = input->control;
  const std::string_view down = input->down, up = input->up;
  Http1FilterConfig config;
  config.underscores = static_cast<Http1FilterConfig::Underscores>(control % 3);
  config.path.escaped_slashes = static_cast<EscapedSlashes>((control >> 2) % 3);
  config.path.merge_slashes = (control & 0x10) != 0;
  Http1Filter filter(config, [](const RequestView& v) {
    return AuthzDecision{v.path.substr(0, 6) != "/admin", "deny-admin", "0"};
  });
  FilterOutput out;
  const size_t step = 1 + (control >> 5) * 7;
  for (size_t i = 0; i < down.size(); i += step) {
    filter.onDownstreamData(down.substr(i, step), out);
  }
  for (size_t i = 0; i < up.size(); i += step) {
    filter.onUpstreamData(up.substr(i, step), out);
  }
  filter.onDownstreamEof(out);
  if (filter.tunneling()) {
    return 0;  // after a protocol switch the bytes are no longer HTTP
  }
  Http1Parser reparse(Http1Parser::Kind::kRequest, config.limits);
  std::string_view fwd(out.to_upstream);
  while (true) {
    auto ev = reparse.next(fwd);
    FUZZ_CHECK(ev.type != Http1Parser::Event::Type::kError);
    if (ev.type == Http1Parser::Event::Type::kNeedMore) {
      break;
    }
    if (ev.type == Http1Parser::Event::Type::kHead) {
      const MessageHead& h = reparse.head();
      auto t = parseRequestTarget(h.method, h.target, config.path);
      FUZZ_CHECK(t.ok());
      FUZZ_CHECK(t->forwarded() == h.target);
      FUZZ_CHECK(t->path.substr(0, 6) != "/admin");
      // One Host, already in normal form: the authority policy matched.
      auto authority = normalizeAuthority(h.host);
      FUZZ_CHECK(authority.ok() && *authority == h.host);
      if (config.underscores != Http1FilterConfig::Underscores::kAllow) {
        for (const Header& hd : h.headers) {
          FUZZ_CHECK(hd.name.find('_') == std::string_view::npos);
        }
      }
    }
  }
  return 0;
}
