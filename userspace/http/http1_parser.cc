// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "http/http1_parser.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "http/authority.h"
#include "http/chars.h"

namespace ferry::http {

using chars::equalsIgnoreCase;
using chars::isTchar;
using chars::isWs;

namespace {

// A comma-separated list of tokens (Connection, Transfer-Encoding, Upgrade). Calls `fn` for
// each element with surrounding whitespace removed; returns false for an empty element or a
// non-token element so that odd lists are refused instead of guessed at.
template <typename Fn>
bool forEachToken(std::string_view value, Fn&& fn) {
  size_t i = 0;
  while (true) {
    size_t comma = value.find(',', i);
    std::string_view elem =
        value.substr(i, comma == std::string_view::npos ? value.npos : comma - i);
    while (!elem.empty() && isWs(elem.front())) {
      elem.remove_prefix(1);
    }
    while (!elem.empty() && isWs(elem.back())) {
      elem.remove_suffix(1);
    }
    if (!chars::isToken(elem)) {
      return false;
    }
    fn(elem);
    if (comma == std::string_view::npos) {
      return true;
    }
    i = comma + 1;
  }
}

bool parseDecimal(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19) {  // 19 digits always fit in uint64_t
    return false;
  }
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

}  // namespace

std::optional<std::string_view> MessageHead::find(std::string_view name) const {
  for (const Header& h : headers) {
    if (equalsIgnoreCase(h.name, name)) {
      return h.value;
    }
  }
  return std::nullopt;
}

absl::Status ParseError::toStatus() const {
  return absl::InvalidArgumentError(absl::StrCat("HTTP/1 ", status, ": ", reason));
}

Http1Parser::Http1Parser(Kind kind, Http1Limits limits) : kind_(kind), limits_(limits) {
  buf_.reserve(1024);
}

bool Http1Parser::inBody() const {
  return state_ != State::kHead && state_ != State::kComplete && state_ != State::kFailed;
}

Http1Parser::Event Http1Parser::fail(uint16_t status, const char* reason) {
  state_ = State::kFailed;
  error_ = ParseError{status, reason};
  return Event{Event::Type::kError, {}};
}

void Http1Parser::reset() {
  state_ = State::kHead;
  buf_.clear();
  line_start_ = 0;
  seen_start_line_ = false;
  empty_lines_ = 0;
  field_lines_ = 0;
  head_.headers.clear();
  head_.method = head_.target = head_.reason = head_.host = {};
  head_.status = 0;
  head_.version_minor = 1;
  head_.framing = BodyFraming::kNone;
  head_.content_length = 0;
  head_.keep_alive = true;
  head_.upgrade = false;
  head_.expect_continue = false;
  remaining_ = 0;
  trailer_.clear();
  trailer_bytes_ = 0;
}

Http1Parser::Event Http1Parser::next(std::string_view& input) {
  const bool request = kind_ == Kind::kRequest;
  while (true) {
    switch (state_) {
      case State::kFailed:
        return Event{Event::Type::kError, {}};

      case State::kComplete:
        reset();
        return Event{Event::Type::kMessageComplete, {}};

      case State::kHead: {
        if (input.empty()) {
          return Event{};
        }
        const void* nl = std::memchr(input.data(), '\n', input.size());
        size_t take = nl ? static_cast<size_t>(static_cast<const char*>(nl) - input.data()) + 1
                         : input.size();
        const size_t line_len = buf_.size() - line_start_ + take - (nl ? 1 : 0);
        if (!seen_start_line_ && line_len > limits_.max_start_line + 1) {
          return request ? fail(414, "request line too long") : fail(502, "status line too long");
        }
        if (buf_.size() + take > limits_.max_head_bytes) {
          return request ? fail(431, "request header section too large")
                         : fail(502, "response header section too large");
        }
        buf_.append(input.data(), take);
        input.remove_prefix(take);
        if (!nl) {
          continue;
        }
        std::string_view line(buf_.data() + line_start_, buf_.size() - line_start_);
        if (line.size() < 2 || line[line.size() - 2] != '\r') {
          return fail(400, "bare LF line terminator");
        }
        line.remove_suffix(2);
        if (!seen_start_line_) {
          if (line.empty()) {
            if (!request || ++empty_lines_ > limits_.max_leading_empty_lines) {
              return fail(400, "empty line before the start line");
            }
            buf_.clear();
            continue;
          }
          if (line.size() > limits_.max_start_line) {
            return request ? fail(414, "request line too long") : fail(502, "status line too long");
          }
          seen_start_line_ = true;
          line_start_ = buf_.size();
          continue;
        }
        if (line.empty()) {
          return parseHeadBuffer();
        }
        if (++field_lines_ > limits_.max_headers) {
          return request ? fail(431, "too many header fields")
                         : fail(502, "too many response header fields");
        }
        line_start_ = buf_.size();
        continue;
      }

      case State::kBodyLength: {
        if (input.empty()) {
          return Event{};
        }
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, input.size()));
        Event ev{Event::Type::kBody, input.substr(0, n), n};
        input.remove_prefix(n);
        remaining_ -= n;
        if (remaining_ == 0) {
          state_ = State::kComplete;
        }
        return ev;
      }

      case State::kBodyUntilClose: {
        if (input.empty()) {
          return Event{};
        }
        Event ev{Event::Type::kBody, input, input.size()};
        input.remove_prefix(input.size());
        return ev;
      }

      default:
        return chunked(input);
    }
  }
}

Http1Parser::Event Http1Parser::finish() {
  switch (state_) {
    case State::kBodyUntilClose:
      state_ = State::kComplete;
      return Event{Event::Type::kMessageComplete, {}};
    case State::kComplete:
      reset();
      return Event{Event::Type::kMessageComplete, {}};
    case State::kHead:
      if (buf_.empty()) {
        return Event{};
      }
      return fail(400, "connection closed inside a message head");
    case State::kFailed:
      return Event{Event::Type::kError, {}};
    default:
      return fail(400, "connection closed inside a message body");
  }
}

Http1Parser::Event Http1Parser::parseHeadBuffer() {
  std::string_view all(buf_);
  size_t eol = all.find("\r\n");
  if (!parseStartLine(all.substr(0, eol))) {
    return Event{Event::Type::kError, {}};
  }
  size_t pos = eol + 2;
  // The last two bytes are the empty line's CRLF.
  while (pos + 2 < all.size()) {
    size_t end = all.find('\n', pos);
    std::string_view line = all.substr(pos, end - 1 - pos);
    Header h;
    if (!parseFieldLine(line, h)) {
      return Event{Event::Type::kError, {}};
    }
    head_.headers.push_back(h);
    pos = end + 1;
  }
  if (!interpretFields() || !decideFraming()) {
    return Event{Event::Type::kError, {}};
  }
  switch (head_.framing) {
    case BodyFraming::kNone:
    case BodyFraming::kTunnel:
      state_ = State::kComplete;
      break;
    case BodyFraming::kContentLength:
      remaining_ = head_.content_length;
      state_ = remaining_ == 0 ? State::kComplete : State::kBodyLength;
      break;
    case BodyFraming::kChunked:
      state_ = State::kChunkSize;
      chunk_line_ = 0;
      chunk_digits_ = 0;
      remaining_ = 0;
      break;
    case BodyFraming::kUntilClose:
      state_ = State::kBodyUntilClose;
      break;
  }
  return Event{Event::Type::kHead, {}};
}

bool Http1Parser::parseStartLine(std::string_view line) {
  auto parseVersion = [this](std::string_view v) -> bool {
    if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9') {
      fail(400, "malformed HTTP version");
      return false;
    }
    if (v[5] != '1') {
      fail(kind_ == Kind::kRequest ? 505 : 502, "unsupported HTTP major version");
      return false;
    }
    head_.version_minor = v[7] - '0';
    return true;
  };
  for (char c : line) {
    if (c == '\r') {
      fail(400, "bare CR in start line");
      return false;
    }
  }
  if (kind_ == Kind::kRequest) {
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) {
      fail(400, "malformed request line");
      return false;
    }
    size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) {
      fail(400, "malformed request line");
      return false;
    }
    head_.method = line.substr(0, sp1);
    head_.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (!chars::isToken(head_.method)) {
      fail(400, "invalid method");
      return false;
    }
    if (head_.target.empty()) {
      fail(400, "malformed request line");
      return false;
    }
    for (char c : head_.target) {
      if (c == '#') {
        fail(400, "fragment ('#') in request target");
        return false;
      }
      if (c == '\0') {
        fail(400, "NUL in request target");
        return false;
      }
      // Only printable ASCII; SP cannot occur here (it delimits the target).
      if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
        fail(400, "invalid character in request target");
        return false;
      }
    }
    return parseVersion(line.substr(sp2 + 1));
  }
  // status-line = HTTP-version SP status-code SP [ reason-phrase ]; the SP before an empty
  // reason is commonly omitted and harmless to accept.
  if (line.size() < 12 || line[8] != ' ' || (line.size() > 12 && line[12] != ' ')) {
    fail(502, "malformed status line");
    return false;
  }
  if (!parseVersion(line.substr(0, 8))) {
    return false;
  }
  int status = 0;
  for (int i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') {
      fail(502, "malformed status code");
      return false;
    }
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100) {
    fail(502, "malformed status code");
    return false;
  }
  head_.status = status;
  head_.reason = line.size() > 13 ? line.substr(13) : std::string_view();
  for (char c : head_.reason) {
    if (!chars::is(c, chars::kFieldVchar) && !isWs(c)) {
      fail(502, "invalid character in reason phrase");
      return false;
    }
  }
  return true;
}

bool Http1Parser::parseFieldLine(std::string_view line, Header& out) {
  const bool request = kind_ == Kind::kRequest;
  const uint16_t bad = request ? 400 : 502;
  if (!line.empty() && isWs(line[0])) {
    fail(bad, "obsolete line folding (obs-fold)");
    return false;
  }
  size_t i = 0;
  while (i < line.size() && isTchar(line[i])) {
    ++i;
  }
  if (i == line.size()) {
    fail(bad, "header field without a colon");
    return false;
  }
  if (line[i] != ':') {
    if (isWs(line[i])) {
      fail(bad, "whitespace between header field name and colon");
    } else if (line[i] == '\r') {
      fail(bad, "bare CR in header field");
    } else if (line[i] == '\0') {
      fail(bad, "NUL in header field name");
    } else {
      fail(bad, "invalid character in header field name");
    }
    return false;
  }
  if (i == 0) {
    fail(bad, "empty header field name");
    return false;
  }
  out.name = line.substr(0, i);
  std::string_view v = line.substr(i + 1);
  for (char c : v) {
    if (!chars::is(c, chars::kFieldVchar) && !isWs(c)) {
      if (c == '\r') {
        fail(bad, "bare CR in header field value");
      } else if (c == '\0') {
        fail(bad, "NUL in header field value");
      } else {
        fail(bad, "invalid character in header field value");
      }
      return false;
    }
  }
  while (!v.empty() && isWs(v.front())) {
    v.remove_prefix(1);
  }
  while (!v.empty() && isWs(v.back())) {
    v.remove_suffix(1);
  }
  out.value = v;
  return true;
}

bool Http1Parser::interpretFields() {
  const bool request = kind_ == Kind::kRequest;
  const uint16_t bad = request ? 400 : 502;
  bool have_cl = false, have_te = false, have_host = false;
  bool conn_close = false, conn_keep_alive = false, conn_upgrade = false, have_upgrade = false;
  int chunked_count = 0;
  bool chunked_last = false, other_coding = false;
  for (const Header& h : head_.headers) {
    const std::string_view n = h.name;
    if (equalsIgnoreCase(n, "content-length")) {
      // Duplicates are refused even when equal: one framing, one value, no guessing.
      if (have_cl) {
        fail(bad, "duplicate Content-Length");
        return false;
      }
      if (!parseDecimal(h.value, head_.content_length)) {
        fail(bad, "invalid Content-Length");
        return false;
      }
      have_cl = true;
    } else if (equalsIgnoreCase(n, "transfer-encoding")) {
      have_te = true;
      bool ok = forEachToken(h.value, [&](std::string_view coding) {
        if (equalsIgnoreCase(coding, "chunked")) {
          ++chunked_count;
          chunked_last = true;
        } else {
          other_coding = true;
          chunked_last = false;
        }
      });
      if (!ok) {
        fail(bad, "malformed Transfer-Encoding");
        return false;
      }
    } else if (equalsIgnoreCase(n, "host")) {
      if (request) {
        if (have_host) {
          fail(400, "more than one Host header field");
          return false;
        }
        if (!validAuthority(h.value)) {
          fail(400, "invalid Host header field");
          return false;
        }
        head_.host = h.value;
      }
      have_host = true;
    } else if (equalsIgnoreCase(n, "connection")) {
      bool ok = forEachToken(h.value, [&](std::string_view opt) {
        if (equalsIgnoreCase(opt, "close")) {
          conn_close = true;
        } else if (equalsIgnoreCase(opt, "keep-alive")) {
          conn_keep_alive = true;
        } else if (equalsIgnoreCase(opt, "upgrade")) {
          conn_upgrade = true;
        }
      });
      if (!ok) {
        fail(bad, "malformed Connection header field");
        return false;
      }
    } else if (equalsIgnoreCase(n, "upgrade")) {
      have_upgrade = true;
    } else if (request && equalsIgnoreCase(n, "expect")) {
      head_.expect_continue = equalsIgnoreCase(h.value, "100-continue");
    }
  }
  if (request && head_.version_minor >= 1 && !have_host) {
    fail(400, "missing Host header field in an HTTP/1.1 request");
    return false;
  }
  if (have_te) {
    if (have_cl) {
      fail(bad, "both Content-Length and Transfer-Encoding");
      return false;
    }
    if (head_.version_minor == 0) {
      // RFC 9112 6.1: framing of an HTTP/1.0 message with Transfer-Encoding is faulty.
      fail(bad, "Transfer-Encoding in an HTTP/1.0 message");
      return false;
    }
    if (chunked_count > 1 || (chunked_count == 1 && !chunked_last)) {
      fail(bad, "chunked must be the final transfer coding, once");
      return false;
    }
    if (request && (other_coding || chunked_count == 0)) {
      fail(501, "unsupported transfer coding");
      return false;
    }
    if (!request && other_coding) {
      // A response with a coding we do not decode is still delimited the same way.
      chunked_count = chunked_last ? 1 : 0;
    }
    head_.framing = chunked_count == 1 ? BodyFraming::kChunked : BodyFraming::kUntilClose;
  } else if (have_cl) {
    head_.framing = BodyFraming::kContentLength;
  } else {
    head_.framing = request ? BodyFraming::kNone : BodyFraming::kUntilClose;
  }
  if (head_.version_minor == 0) {
    head_.keep_alive = conn_keep_alive && !conn_close;
  } else {
    head_.keep_alive = !conn_close;
  }
  head_.upgrade = have_upgrade && conn_upgrade;
  return true;
}

bool Http1Parser::decideFraming() {
  if (kind_ == Kind::kRequest) {
    return true;
  }
  const int s = head_.status;
  if (connect_request_ && s >= 200 && s < 300) {
    head_.framing = BodyFraming::kTunnel;
  } else if (head_request_ || (s >= 100 && s < 200) || s == 204 || s == 304) {
    head_.framing = BodyFraming::kNone;
  }
  if (head_.framing == BodyFraming::kUntilClose) {
    head_.keep_alive = false;
  }
  return true;
}

bool Http1Parser::trailerLine(std::string_view line) {
  Header h;
  if (!parseFieldLine(line, h)) {
    return false;
  }
  if (equalsIgnoreCase(h.name, "content-length") || equalsIgnoreCase(h.name, "transfer-encoding") ||
      equalsIgnoreCase(h.name, "host")) {
    fail(kind_ == Kind::kRequest ? 400 : 502, "framing or routing field in trailers");
    return false;
  }
  return true;
}

// The chunked coding (RFC 9112 7.1) as a byte-level state machine that consumes as much of
// the input as it can and reports it as one kBody event of wire bytes.
Http1Parser::Event Http1Parser::chunked(std::string_view& input) {
  const uint16_t bad = kind_ == Kind::kRequest ? 400 : 502;
  size_t i = 0;
  size_t payload = 0;
  const size_t n = input.size();
  auto done = [&](State next) {
    state_ = next;
    Event ev{Event::Type::kBody, input.substr(0, i), payload};
    input.remove_prefix(i);
    return ev;
  };
  while (i < n) {
    const char c = input[i];
    switch (state_) {
      case State::kChunkSize: {
        ++chunk_line_;
        int v = chars::hexValue(c);
        if (v >= 0) {
          if (++chunk_digits_ > 15) {  // 15 hex digits: no overflow, and far beyond any use
            return fail(bad, "chunk size too large");
          }
          remaining_ = (remaining_ << 4) | static_cast<uint64_t>(v);
          ++i;
          break;
        }
        if (chunk_digits_ == 0) {
          return fail(bad, "invalid chunk size");
        }
        if (c == '\r') {
          state_ = State::kChunkSizeLf;
          ++i;
        } else if (c == ';' || isWs(c)) {
          state_ = State::kChunkExt;
          ++i;
        } else {
          return fail(bad, "invalid chunk size");
        }
        break;
      }
      case State::kChunkExt:
        // Extensions are passed on untouched; they only need to be unambiguous: printable
        // characters, bounded length, terminated by CRLF.
        if (++chunk_line_ > limits_.max_chunk_line) {
          return fail(bad, "chunk extension too long");
        }
        if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else if (!(chars::is(c, chars::kFieldVchar) && static_cast<unsigned char>(c) < 0x80) &&
                   !isWs(c)) {
          return fail(bad, c == '\n' ? "bare LF in chunk extension"
                                     : "invalid character in chunk extension");
        }
        ++i;
        break;
      case State::kChunkSizeLf:
        if (c != '\n') {
          return fail(bad, "bare CR in chunk size line");
        }
        ++i;
        chunk_line_ = 0;
        chunk_digits_ = 0;
        if (remaining_ == 0) {
          state_ = State::kTrailer;
          trailer_.clear();
          trailer_bytes_ = 0;
        } else {
          state_ = State::kChunkData;
        }
        break;
      case State::kChunkData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - i));
        i += take;
        payload += take;
        remaining_ -= take;
        if (remaining_ == 0) {
          state_ = State::kChunkDataCr;
        }
        break;
      }
      case State::kChunkDataCr:
        if (c != '\r') {
          return fail(bad, "chunk data not followed by CRLF");
        }
        state_ = State::kChunkDataLf;
        ++i;
        break;
      case State::kChunkDataLf:
        if (c != '\n') {
          return fail(bad, "chunk data not followed by CRLF");
        }
        state_ = State::kChunkSize;
        ++i;
        break;
      case State::kTrailer: {
        if (++trailer_bytes_ > limits_.max_head_bytes) {
          return fail(kind_ == Kind::kRequest ? 431 : 502, "trailer section too large");
        }
        ++i;
        if (c != '\n') {
          trailer_.push_back(c);
          break;
        }
        if (trailer_.empty() || trailer_.back() != '\r') {
          return fail(bad, "bare LF in trailer section");
        }
        trailer_.pop_back();
        if (trailer_.empty()) {
          return done(State::kComplete);
        }
        if (!trailerLine(trailer_)) {
          return Event{Event::Type::kError, {}};
        }
        trailer_.clear();
        break;
      }
      default:
        return fail(500, "internal: bad chunked state");
    }
  }
  if (i == 0) {
    return Event{};
  }
  return done(state_);
}

}  // namespace ferry::http
