// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// One resumable stream handed from an agent to its successor (docs/upgrades.md, "Hand-over on
// one node"): its app-side socket, which travels as SCM_RIGHTS, and the state the successor
// needs to resume it on the peer agent. On the hand-over socket a stream is one "conn" record
// (the text state and the socket) followed by "data" records carrying its unconfirmed and
// pending bytes; records stay below the hand-over's record size.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hbone/resume.h"

namespace ferry::agent {

struct HandedStream {
  enum class Role { kClient, kServer };  // the HBONE side this agent had: client = source
  Role role = Role::kClient;
  hbone::ResumeToken token;
  std::string pod_uid;    // the local pod
  std::string peer;       // SPIFFE ID: client, the pinned destination; server, the bound source
  std::string local;      // SPIFFE ID this side presents
  std::string authority;  // the CONNECT :authority
  std::string dial;       // client: the destination pod's address
  std::string baggage;    // client: sent on CONNECT
  uint64_t sent = 0;      // ledger: bytes the app gave
  uint64_t confirmed = 0;
  uint64_t delivered = 0;  // bytes of the other direction given to the app (pending included)
  bool app_eof = false;
  bool peer_eof = false;
  std::string unconfirmed;  // sent - confirmed bytes, for retransmission
  std::string pending;      // received from the peer, not yet written to the app
  int app_fd = -1;          // owned by whoever holds the struct (close it when dropped)
};

struct HandoverRecord {
  std::string text;
  std::vector<int> fds;  // not owned
};

// The records for one stream, the app socket riding on the first. `max_record` bounds each.
std::vector<HandoverRecord> encodeStream(const HandedStream& s, size_t max_record);

// Reassembles streams from their records, in order. feed() returns a stream once its last
// record arrived, nullopt while one is incomplete, and an error for a record that breaks the
// format (the stream being assembled is dropped and its socket closed).
class StreamDecoder {
 public:
  ~StreamDecoder();
  static bool isStreamRecord(const std::string& text);
  absl::StatusOr<std::optional<HandedStream>> feed(const std::string& text, std::vector<int> fds);

 private:
  void drop();
  std::optional<HandedStream> building_;
  size_t want_ = 0;  // bytes of unconfirmed + pending still to come
};

}  // namespace ferry::agent
