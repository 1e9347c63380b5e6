// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The agent's record of enrolled pods, so that a restarted agent can put its in-pod listeners
// back without waiting for the CNI (which only speaks on pod add/delete). Written atomically
// (temporary file + fsync + rename) on every change: a crash leaves the old or the new record,
// never half of one.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "enroll/protocol.h"

namespace ferry::enroll {

class Journal {
 public:
  explicit Journal(std::string path) : path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  // A missing file is an empty journal; a corrupt one is an error naming the file and the fault.
  absl::StatusOr<std::vector<PodInfo>> load() const;
  absl::Status save(const std::vector<PodInfo>& pods) const;

 private:
  std::string path_;
};

struct Replay {
  std::vector<PodInfo> kept;
  std::vector<PodInfo> dropped;  // their network namespace is gone: the pod died while we were down
};

// Splits journaled pods into those whose netns still exists and those to forget.
Replay replay(const std::vector<PodInfo>& pods,
              const std::function<bool(const std::string& netns)>& netns_exists);
bool netnsExists(const std::string& netns_path);

}  // namespace ferry::enroll
