// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"

namespace ferry::http::testing {

// What a parser made of a byte stream, in a form that does not depend on how the stream was
// split: one entry per message ("GET /x body=<wire bytes>"), then "ERROR <status> <reason>"
// if the stream was refused.
struct Transcript {
  std::vector<std::string> messages;
  std::string error;  // empty when no error
  uint16_t error_status = 0;
  bool operator==(const Transcript&) const = default;
};

// Feeds `wire` to a fresh parser in pieces of `step` bytes (0: all at once).
inline Transcript parseAll(Http1Parser::Kind kind, std::string_view wire, size_t step = 0,
                           Http1Limits limits = {}, bool eof = false) {
  Http1Parser p(kind, limits);
  Transcript t;
  std::string cur;
  std::string body;
  auto feed = [&](std::string_view piece) {
    while (true) {
      auto ev = p.next(piece);
      switch (ev.type) {
        case Http1Parser::Event::Type::kNeedMore:
          return true;
        case Http1Parser::Event::Type::kHead: {
          const MessageHead& h = p.head();
          cur = kind == Http1Parser::Kind::kRequest
                    ? std::string(h.method) + " " + std::string(h.target)
                    : std::to_string(h.status);
          body.clear();
          break;
        }
        case Http1Parser::Event::Type::kBody:
          body.append(ev.data);
          break;
        case Http1Parser::Event::Type::kMessageComplete:
          t.messages.push_back(cur + " body=" + body);
          break;
        case Http1Parser::Event::Type::kError:
          t.error = p.error().reason;
          t.error_status = p.error().status;
          return false;
      }
    }
  };
  if (step == 0) {
    step = wire.size() == 0 ? 1 : wire.size();
  }
  for (size_t i = 0; i < wire.size(); i += step) {
    if (!feed(wire.substr(i, step))) {
      return t;
    }
  }
  if (eof) {
    auto ev = p.finish();
    if (ev.type == Http1Parser::Event::Type::kMessageComplete) {
      t.messages.push_back(cur + " body=" + body);
    } else if (ev.type == Http1Parser::Event::Type::kError) {
      t.error = p.error().reason;
      t.error_status = p.error().status;
    }
  }
  return t;
}

}  // namespace ferry::http::testing
