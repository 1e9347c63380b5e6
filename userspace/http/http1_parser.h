// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

// A strict, incremental HTTP/1.1 message parser (RFC 9112) for a proxy that must agree with
// every possible upstream on where each message starts and ends. Anything the RFC lets a
// recipient "handle" in more than one way (bare LF, obs-fold, CL with TE, duplicate
// Content-Length, whitespace before the colon, ...) is refused, so no two parsers can
// disagree about it (request smuggling).
//
// Sans-IO and pull-style: feed bytes with next(), which consumes a prefix of the input and
// returns one event. The head is copied into one reused buffer (bounded by the limits); body
// bytes are never copied: kBody events are views into the caller's input and carry the bytes
// exactly as they were on the wire (chunk framing included), already validated.
namespace ferry::http {

struct Http1Limits {
  // Request line (or status line) length; beyond it a request gets 414.
  size_t max_start_line = 8 * 1024;
  // Whole head (start line + fields + CRLFs); beyond it a request gets 431. Envoy: 60 KiB.
  size_t max_head_bytes = 60 * 1024;
  // Number of header field lines; beyond it a request gets 431.
  size_t max_headers = 100;
  // One chunk-size line including extensions (chunk-extension floods).
  size_t max_chunk_line = 4 * 1024;
  // Empty lines tolerated before a request line (RFC 9112 2.2 says "at least one").
  size_t max_leading_empty_lines = 4;
};

struct Header {
  std::string_view name;   // as received (case preserved)
  std::string_view value;  // leading and trailing whitespace removed
};

enum class BodyFraming : uint8_t {
  kNone,           // no content
  kContentLength,  // content_length bytes
  kChunked,        // chunked transfer coding, then trailers
  kUntilClose,     // responses only: everything until the connection closes
  kTunnel,         // response to CONNECT (2xx): the connection becomes a raw tunnel
};

// The parsed head of the current message. Views point into the parser's head buffer and stay
// valid until the next call to next() after the message completes.
struct MessageHead {
  // Requests.
  std::string_view method;
  std::string_view target;  // raw request-target, only character-checked here
  // Responses.
  int status = 0;
  std::string_view reason;

  int version_minor = 1;  // HTTP/1.<minor>; minors above 1 are treated as 1.1
  std::vector<Header> headers;
  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;        // after this message, per Connection and the version
  bool upgrade = false;          // Upgrade field present and Connection lists "upgrade"
  bool expect_continue = false;  // Expect: 100-continue
  std::string_view host;         // requests: the one Host field value (empty when absent)

  // First value of a field, matched case-insensitively.
  std::optional<std::string_view> find(std::string_view name) const;
};

// Why a message was refused, with the status a server answers with. `reason` is a static
// string (no allocation on the error path).
struct ParseError {
  uint16_t status = 400;
  const char* reason = "";
  absl::Status toStatus() const;
};

class Http1Parser {
 public:
  enum class Kind : uint8_t { kRequest, kResponse };

  struct Event {
    enum class Type : uint8_t { kNeedMore, kHead, kBody, kMessageComplete, kError };
    Type type = Type::kNeedMore;
    std::string_view data;  // kBody: wire bytes of the body
    size_t payload = 0;     // kBody: how many of them are content (not chunked framing)
  };

  explicit Http1Parser(Kind kind, Http1Limits limits = {});

  // Consumes a prefix of `input` (advancing it) and returns the next event. kNeedMore means
  // all of `input` was consumed. After kError the parser stays failed.
  Event next(std::string_view& input);

  // The connection was closed by the peer. Completes an until-close response body; returns
  // kError when the close truncates a message, kNeedMore when idle between messages.
  Event finish();

  // Responses only: what the request this response answers looked like, which decides
  // whether the response has a body (RFC 9112 6.3). Call before the response head arrives.
  void setRequestContext(bool head_request, bool connect_request) {
    head_request_ = head_request;
    connect_request_ = connect_request;
  }

  const MessageHead& head() const { return head_; }
  // The head exactly as received (start line through the empty line).
  std::string_view rawHead() const { return buf_; }
  const ParseError& error() const { return error_; }
  bool failed() const { return state_ == State::kFailed; }
  // Between messages, with no bytes of the next one seen.
  bool idle() const { return state_ == State::kHead && buf_.empty(); }
  // True while the current message's body is being read (after kHead, before completion).
  bool inBody() const;

 private:
  enum class State : uint8_t {
    kHead,
    kBodyLength,
    kBodyUntilClose,
    kChunkSize,
    kChunkExt,
    kChunkSizeLf,
    kChunkData,
    kChunkDataCr,
    kChunkDataLf,
    kTrailer,
    kComplete,
    kFailed,
  };

  Event fail(uint16_t status, const char* reason);
  Event parseHeadBuffer();
  bool parseStartLine(std::string_view line);
  bool parseFieldLine(std::string_view line, Header& out);
  bool interpretFields();
  bool decideFraming();
  Event chunked(std::string_view& input);
  bool trailerLine(std::string_view line);
  void reset();

  Kind kind_;
  Http1Limits limits_;
  State state_ = State::kHead;
  std::string buf_;        // head bytes of the current message (reused)
  size_t line_start_ = 0;  // where the line being received starts in buf_
  bool seen_start_line_ = false;
  size_t empty_lines_ = 0;
  size_t field_lines_ = 0;
  MessageHead head_;
  ParseError error_;
  uint64_t remaining_ = 0;  // body or chunk bytes left
  size_t chunk_line_ = 0;   // bytes of the current chunk-size line
  int chunk_digits_ = 0;
  std::string trailer_;  // current trailer line (reused)
  size_t trailer_bytes_ = 0;
  bool head_request_ = false;
  bool connect_request_ = false;
};

}  // namespace ferry::http
