// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "hbone/resume.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ferry::hbone {
namespace {

// This Abseil's string_view is its own type, not std::string_view.
absl::string_view av(std::string_view s) {
  return {s.data(), s.size()};
}

}  // namespace

ResumeToken ResumeToken::generate() {
  ResumeToken t;
  size_t got = 0;
  while (got < kBytes) {
    ssize_t n = ::getrandom(t.bytes_.data() + got, kBytes - got, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      std::abort();  // no CSPRNG: a predictable token would let a stream be taken over
    }
    got += static_cast<size_t>(n);
  }
  return t;
}

std::optional<ResumeToken> ResumeToken::parse(std::string_view text) {
  std::string raw;
  if (text.size() != kTextLength || !absl::WebSafeBase64Unescape(av(text), &raw) ||
      raw.size() != kBytes) {
    return std::nullopt;
  }
  ResumeToken t;
  std::memcpy(t.bytes_.data(), raw.data(), kBytes);
  // Only the canonical spelling: the last character carries 2 unused bits that must be 0.
  if (t.str() != text) {
    return std::nullopt;
  }
  return t;
}

std::string ResumeToken::str() const {
  return absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(bytes_.data()), bytes_.size()));
}

std::string formatResume(const ResumeHeader& h) {
  std::string out(kResumeVersion);
  if (h.token) {
    absl::StrAppend(&out, "; token=", h.token->str());
  }
  if (h.delivered) {
    absl::StrAppend(&out, "; delivered=", *h.delivered);
  }
  if (h.retry) {
    absl::StrAppend(&out, "; retry");
  }
  return out;
}

std::optional<ResumeHeader> parseResume(std::string_view value) {
  std::vector<absl::string_view> parts = absl::StrSplit(av(value), ';');
  // A null string_view (no header at all) splits into no parts, not one empty part.
  if (parts.empty() || absl::StripAsciiWhitespace(parts[0]) != av(kResumeVersion)) {
    return std::nullopt;
  }
  ResumeHeader h;
  bool seen_retry = false;
  for (size_t i = 1; i < parts.size(); ++i) {
    absl::string_view p = absl::StripAsciiWhitespace(parts[i]);
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(p, absl::MaxSplits('=', 1));
    if (kv.first == "token") {
      if (h.token || !(h.token = ResumeToken::parse({kv.second.data(), kv.second.size()}))) {
        return std::nullopt;
      }
    } else if (kv.first == "delivered") {
      uint64_t n = 0;
      // Digits only: SimpleAtoi alone would take "+5" or " 5".
      if (h.delivered || kv.second.empty() || kv.second.size() > 20 ||
          kv.second.find_first_not_of("0123456789") != absl::string_view::npos ||
          !absl::SimpleAtoi(kv.second, &n)) {
        return std::nullopt;
      }
      h.delivered = n;
    } else if (p == "retry") {
      if (seen_retry) {
        return std::nullopt;
      }
      seen_retry = h.retry = true;
    } else if (p.empty()) {
      return std::nullopt;
    }
  }
  return h;
}

ResumeCheck checkResume(const ResumeBinding& bound, const tls::SpiffeId& peer,
                        std::string_view authority) {
  if (!(bound.peer == peer)) {
    return ResumeCheck::kWrongPeer;
  }
  if (bound.authority != authority) {
    return ResumeCheck::kWrongAuthority;
  }
  return ResumeCheck::kOk;
}

int resumeStatus(ResumeCheck check) {
  switch (check) {
    case ResumeCheck::kOk:
      return 200;
    case ResumeCheck::kWrongPeer:
      return 403;
    case ResumeCheck::kWrongAuthority:
      return 400;
  }
  return 403;
}

RetransmitLedger RetransmitLedger::restore(uint64_t confirmed,
                                           absl::Span<const uint8_t> unconfirmed) {
  RetransmitLedger l;
  l.confirmed_ = confirmed;
  l.record(unconfirmed);
  return l;
}

void RetransmitLedger::record(absl::Span<const uint8_t> bytes) {
  if (bytes.empty()) {
    return;
  }
  absl::Span<uint8_t> room = retained_.prepare(bytes.size());
  std::memcpy(room.data(), bytes.data(), bytes.size());
  retained_.commit(bytes.size());
}

absl::Status RetransmitLedger::confirm(uint64_t delivered) {
  if (delivered > sentOffset()) {
    return absl::DataLossError(absl::StrCat("the peer confirms ", delivered,
                                            " bytes delivered; only ", sentOffset(), " were sent"));
  }
  if (delivered > confirmed_) {
    retained_.consume(static_cast<size_t>(delivered - confirmed_));
    retained_.shrinkIfEmpty();
    confirmed_ = delivered;
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Span<const uint8_t>> RetransmitLedger::replayFrom(uint64_t delivered) {
  if (delivered < confirmed_) {
    return absl::DataLossError(
        absl::StrCat("the peer resumes at byte ", delivered, " but had confirmed ", confirmed_));
  }
  if (absl::Status s = confirm(delivered); !s.ok()) {
    return s;
  }
  return unconfirmed();
}

absl::StatusOr<uint64_t> confirmedByWindow(uint64_t data_sent, int64_t remote_window,
                                           uint32_t initial_window) {
  // Every DATA byte sent took one byte of window; every byte credited back gave one.
  int64_t in_flight = static_cast<int64_t>(initial_window) - remote_window;
  if (in_flight < 0 || static_cast<uint64_t>(in_flight) > data_sent) {
    return absl::DataLossError(absl::StrCat("stream window ", remote_window, " of ", initial_window,
                                            " after ", data_sent,
                                            " bytes sent: more credit than data"));
  }
  return data_sent - static_cast<uint64_t>(in_flight);
}

}  // namespace ferry::hbone
