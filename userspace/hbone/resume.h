// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// HBONE stream resumption (docs/upgrades.md, "Stream hand-over"): the pieces both ends share.
//
// - ResumeToken: 128 random bits the client agent picks for each stream it opens. It is only
//   ever sent inside mutual TLS, and a resume is honoured only on a connection whose verified
//   peer identity is the one the stream was opened with (checkResume), so a token alone is
//   worth nothing to another workload.
// - The `ferry-resume` header: offered on a new stream's CONNECT, accepted in the 200; a resume
//   CONNECT carries the token and what the client delivered, the 200 answers with what the
//   server delivered. An agent that does not know the header ignores it (it is an ordinary
//   header to HTTP/2), the offer then goes unanswered and both ends keep today's behaviour.
// - RetransmitLedger: what one end sent on a stream and the other has not confirmed delivered
//   to its app, i.e. what it must be able to send again.
// - confirmedByWindow: the confirmation itself, read from HTTP/2 flow control. An HBONE
//   receiver credits window only for bytes its app side consumed (connection.h), so the
//   credit returned for a stream counts exactly the bytes delivered to the peer's app.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "net/byte_buffer.h"
#include "tls/spiffe.h"

namespace ferry::hbone {

inline constexpr std::string_view kResumeHeader = "ferry-resume";
inline constexpr std::string_view kResumeVersion = "v1";
// RST_STREAM code with which an agent handing a stream over detaches it from its connection:
// "suspended, the stream will be resumed". Sent only to a peer that accepted the offer (an
// unknown code means INTERNAL_ERROR to anyone else, RFC 9113 section 7). ASCII "FRSM".
inline constexpr uint32_t kSuspendErrorCode = 0x4652534d;

class ResumeToken {
 public:
  static constexpr size_t kBytes = 16;
  static constexpr size_t kTextLength = 22;  // unpadded base64url of 16 bytes

  // From the kernel's CSPRNG (getrandom); aborts if the kernel cannot provide it.
  static ResumeToken generate();
  // Exactly kTextLength base64url characters that decode to kBytes bytes.
  static std::optional<ResumeToken> parse(std::string_view text);
  std::string str() const;

  friend bool operator==(const ResumeToken&, const ResumeToken&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const ResumeToken& t) {
    return H::combine_contiguous(std::move(h), t.bytes_.data(), t.bytes_.size());
  }

 private:
  std::array<uint8_t, kBytes> bytes_{};
};

// One `ferry-resume` header value: "v1" then "; key=value" parameters.
//   CONNECT, new stream   v1; token=<t>                   the offer
//   200 to an offer       v1                              accepted: the stream is resumable
//   CONNECT, resume       v1; token=<t>; delivered=<n>    n: server->client bytes the client's
//                                                         app has been given
//   200 to a resume       v1; delivered=<n>               n: client->server bytes likewise
//   503 to a resume       v1; retry                       not here yet (hand-over in progress)
struct ResumeHeader {
  std::optional<ResumeToken> token;
  std::optional<uint64_t> delivered;
  bool retry = false;

  bool isOffer() const { return token && !delivered && !retry; }
  bool isResume() const { return token && delivered && !retry; }
};

std::string formatResume(const ResumeHeader& h);
// nullopt for anything that is not a well-formed v1 value (another version, a bad token or
// number, a repeated parameter): the receiver then treats the peer as not resuming. Unknown
// parameters are ignored (later versions of v1 may add some).
std::optional<ResumeHeader> parseResume(std::string_view value);

// Who may resume a stream: the peer identity proven by the certificate of the connection the
// stream was opened on, and the stream's :authority.
struct ResumeBinding {
  tls::SpiffeId peer;
  std::string authority;
};
enum class ResumeCheck { kOk, kWrongPeer, kWrongAuthority };
ResumeCheck checkResume(const ResumeBinding& bound, const tls::SpiffeId& peer,
                        std::string_view authority);
// The status a server answers a resume with: 200, or 403 (another identity), 400 (another
// authority). An unknown token is 410 Gone (kResumeUnknown), "not yet" 503 (kResumeRetry).
int resumeStatus(ResumeCheck check);
inline constexpr int kResumeUnknown = 410;
inline constexpr int kResumeRetry = 503;

// Bytes sent on one direction of a resumable stream and not yet confirmed delivered to the
// peer's app. Offsets count from the stream's first byte in that direction. Memory: exactly
// the unconfirmed bytes, bounded by the peer's stream window plus what the sender buffers.
class RetransmitLedger {
 public:
  RetransmitLedger() : retained_(net::ByteBuffer::kUnbounded) {}
  // After a hand-over: `confirmed` bytes were confirmed, `unconfirmed` follow them.
  static RetransmitLedger restore(uint64_t confirmed, absl::Span<const uint8_t> unconfirmed);

  // Records bytes as sent (they may still wait in a send buffer: they count from the moment
  // the app gave them).
  void record(absl::Span<const uint8_t> bytes);
  // The peer has delivered `delivered` bytes in all. Confirmations only move forward; a value
  // behind the last one is stale and changes nothing; one beyond what was sent is an error (the
  // peer counts bytes nobody sent: the stream cannot be trusted).
  absl::Status confirm(uint64_t delivered);
  // A resume: the peer says it delivered `delivered` bytes; returns the bytes to send again.
  // An error when `delivered` is behind the confirmed offset (the peer lost bytes it had
  // confirmed) or beyond what was sent. Valid until the next call.
  absl::StatusOr<absl::Span<const uint8_t>> replayFrom(uint64_t delivered);

  uint64_t sentOffset() const { return confirmed_ + retained_.size(); }
  uint64_t confirmedOffset() const { return confirmed_; }
  absl::Span<const uint8_t> unconfirmed() const { return retained_.readable(); }
  size_t retainedBytes() const { return retained_.size(); }
  size_t heldBytes() const { return retained_.capacity(); }  // memory, not content

 private:
  uint64_t confirmed_ = 0;
  net::ByteBuffer retained_;
};

// Bytes of a stream's DATA the peer has credited back, i.e. delivered to its app: `data_sent`
// DATA payload bytes so far, the stream's current send window, and the peer's
// SETTINGS_INITIAL_WINDOW_SIZE. An error when the window says more than was sent.
absl::StatusOr<uint64_t> confirmedByWindow(uint64_t data_sent, int64_t remote_window,
                                           uint32_t initial_window);

}  // namespace ferry::hbone
