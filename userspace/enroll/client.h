// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The ferry-cni side: one request, one reply, blocking with a deadline. A CNI plugin runs once
// per pod event, so a short-lived connection per call is the simple and robust choice.

#include <chrono>
#include <string>

#include "absl/status/statusor.h"
#include "enroll/protocol.h"

namespace ferry::enroll {

// Sends `request` to the agent listening on `socket_path` and returns its reply. Transport
// failures (no agent, timeout, garbled reply) are errors; a reply with ok=false is returned as a
// Reply so the caller can print the agent's reason.
absl::StatusOr<Reply> call(const std::string& socket_path, const Request& request,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Convenience wrappers that fold ok=false into an error status.
absl::Status addPod(const std::string& socket_path, const PodInfo& pod);
absl::Status delPod(const std::string& socket_path, const std::string& uid);
absl::Status checkPod(const std::string& socket_path, const std::string& uid);

}  // namespace ferry::enroll
