// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/drain/stream_state.h"

#include <unistd.h>

#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ferry::agent {
namespace {

constexpr char kConnHeader[] = "conn v1\n";
constexpr char kDataHeader[] = "data\n";

absl::Status bad(const std::string& why) {
  return absl::DataLossError(absl::StrCat("handover: stream record: ", why));
}

}  // namespace

// Values are single lines (SPIFFE IDs, addresses, baggage: all HTTP header material, which
// cannot hold a newline); a forged line would repeat a key, which the decoder refuses.
std::vector<HandoverRecord> encodeStream(const HandedStream& s, size_t max_record) {
  std::string text = kConnHeader;
  absl::StrAppend(&text, "role ", s.role == HandedStream::Role::kClient ? "client" : "server", "\n",
                  "token ", s.token.str(), "\n", "pod ", s.pod_uid, "\n", "peer ", s.peer, "\n",
                  "local ", s.local, "\n", "authority ", s.authority, "\n");
  absl::StrAppend(&text, "dial ", s.dial, "\n", "baggage ", s.baggage, "\n", "sent ", s.sent, "\n",
                  "confirmed ", s.confirmed, "\n", "delivered ", s.delivered, "\n", "app-eof ",
                  s.app_eof ? 1 : 0, "\n", "peer-eof ", s.peer_eof ? 1 : 0, "\n");
  absl::StrAppend(&text, "unconfirmed ", s.unconfirmed.size(), "\n", "pending ", s.pending.size());
  std::vector<HandoverRecord> out;
  out.push_back({std::move(text), {s.app_fd}});
  const std::string bytes = s.unconfirmed + s.pending;
  const size_t room = max_record - sizeof(kDataHeader) + 1;
  for (size_t at = 0; at < bytes.size(); at += room) {
    out.push_back({absl::StrCat(kDataHeader, bytes.substr(at, room)), {}});
  }
  return out;
}

StreamDecoder::~StreamDecoder() {
  drop();
}

void StreamDecoder::drop() {
  if (building_ && building_->app_fd >= 0) {
    ::close(building_->app_fd);
  }
  building_.reset();
  want_ = 0;
}

bool StreamDecoder::isStreamRecord(const std::string& text) {
  return text.rfind(kConnHeader, 0) == 0 || text.rfind(kDataHeader, 0) == 0;
}

absl::StatusOr<std::optional<HandedStream>> StreamDecoder::feed(const std::string& text,
                                                                std::vector<int> fds) {
  const bool data = text.rfind(kDataHeader, 0) == 0;
  if (data != building_.has_value() || (data && !fds.empty()) || (!data && fds.size() != 1)) {
    for (int fd : fds) {
      ::close(fd);
    }
    drop();
    return bad(data ? "bytes without a stream" : "a stream needs exactly its app socket");
  }
  if (data) {
    std::string_view bytes = std::string_view(text).substr(sizeof(kDataHeader) - 1);
    if (bytes.size() > want_) {
      drop();
      return bad("more bytes than announced");
    }
    HandedStream& s = *building_;
    size_t to_unconfirmed =
        std::min(bytes.size(), static_cast<size_t>(s.sent - s.confirmed) - s.unconfirmed.size());
    s.unconfirmed.append(bytes.substr(0, to_unconfirmed));
    s.pending.append(bytes.substr(to_unconfirmed));
    want_ -= bytes.size();
  } else {
    building_.emplace();
    building_->app_fd = fds[0];
    std::map<std::string, std::string> kv;
    std::vector<std::string> lines = absl::StrSplit(text, '\n');
    for (size_t i = 1; i < lines.size(); ++i) {
      std::pair<std::string, std::string> p = absl::StrSplit(lines[i], absl::MaxSplits(' ', 1));
      if (!kv.emplace(p.first, p.second).second) {
        drop();
        return bad("repeated key " + p.first);
      }
    }
    HandedStream& s = *building_;
    auto num = [&](const char* key, uint64_t* out) {
      auto it = kv.find(key);
      return it != kv.end() && absl::SimpleAtoi(it->second, out);
    };
    uint64_t app_eof = 0, peer_eof = 0, unconfirmed = 0, pending = 0;
    std::optional<hbone::ResumeToken> token = hbone::ResumeToken::parse(kv["token"]);
    const std::string& role = kv["role"];
    if (!token || (role != "client" && role != "server") || !num("sent", &s.sent) ||
        !num("confirmed", &s.confirmed) || !num("delivered", &s.delivered) ||
        !num("app-eof", &app_eof) || !num("peer-eof", &peer_eof) ||
        !num("unconfirmed", &unconfirmed) || !num("pending", &pending) || app_eof > 1 ||
        peer_eof > 1 || s.confirmed > s.sent || unconfirmed != s.sent - s.confirmed ||
        kv["authority"].empty() || kv["peer"].empty()) {
      drop();
      return bad("missing or inconsistent state");
    }
    s.role = role == "client" ? HandedStream::Role::kClient : HandedStream::Role::kServer;
    s.token = *token;
    s.pod_uid = kv["pod"];
    s.peer = kv["peer"];
    s.local = kv["local"];
    s.authority = kv["authority"];
    s.dial = kv["dial"];
    s.baggage = kv["baggage"];
    s.app_eof = app_eof == 1;
    s.peer_eof = peer_eof == 1;
    want_ = unconfirmed + pending;
  }
  if (want_ > 0) {
    return std::optional<HandedStream>();
  }
  HandedStream done = std::move(*building_);
  building_.reset();  // the socket is the caller's now
  return std::optional<HandedStream>(std::move(done));
}

}  // namespace ferry::agent
