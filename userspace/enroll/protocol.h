// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The enrollment protocol between ferry-cni and the node agent: newline-delimited JSON over a
// Unix stream socket, one request line answered by one reply line.
//
//   {"op":"add","pod":{"uid","name","namespace","service_account","netns","ips":[..]}}
//   {"op":"del","uid":"..."}
//   {"op":"check","uid":"..."}
//   reply: {"ok":true} | {"ok":false,"error":"..."}
//
// Decoding is strict: unknown ops, unknown fields, wrong types and bad values are rejected with a
// message naming the field, because a silently ignored typo would enroll a pod half-way.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::enroll {

inline constexpr char kDefaultSocketPath[] = "/run/ferry/agent.sock";
// A request or reply line longer than this is refused: real ones are a few hundred bytes.
inline constexpr size_t kMaxLineBytes = 64 * 1024;

struct PodInfo {
  std::string uid;
  std::string name;
  std::string ns;
  std::string service_account;   // may be empty: the agent then takes it from workload state
  std::string netns;             // absolute path of the pod's network namespace
  std::vector<std::string> ips;  // textual IPv4/IPv6, canonical form after decoding
  bool operator==(const PodInfo&) const = default;
};

enum class Op { kAdd, kDel, kCheck };

struct Request {
  Op op = Op::kAdd;
  PodInfo pod;      // kAdd
  std::string uid;  // kDel, kCheck (for kAdd: pod.uid)
  bool operator==(const Request&) const = default;
};

struct Reply {
  bool ok = true;
  std::string error;
  static Reply success() { return Reply{}; }
  static Reply failure(std::string message) { return Reply{false, std::move(message)}; }
  bool operator==(const Reply&) const = default;
};

std::string_view opName(Op op);

// Encoders return one line without the trailing newline.
std::string encodeRequest(const Request& request);
std::string encodeReply(const Reply& reply);
absl::StatusOr<Request> decodeRequest(std::string_view line);
absl::StatusOr<Reply> decodeReply(std::string_view line);

// Pod JSON object (as in the "pod" field), shared with the journal.
absl::Status validatePod(const PodInfo& pod);

}  // namespace ferry::enroll
