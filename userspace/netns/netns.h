// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Network namespace helpers. The agent lives in the host namespace but opens its listening
// sockets and its outbound connections inside each pod's namespace: a socket keeps the
// namespace it was created in, so a thread enters the pod's namespace, creates the socket and
// leaves. setns() changes only the calling thread, so this never disturbs other workers.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::netns {

// Enters the network namespace at `path` on this thread for the object's lifetime, then
// returns the thread to the namespace it was in.
class ScopedNetns {
 public:
  static absl::StatusOr<ScopedNetns> enter(const std::string& path);
  ScopedNetns(ScopedNetns&& other) noexcept;
  ScopedNetns& operator=(ScopedNetns&&) = delete;
  ScopedNetns(const ScopedNetns&) = delete;
  ~ScopedNetns();

 private:
  explicit ScopedNetns(int original_fd) : original_fd_(original_fd) {}
  int original_fd_;
};

// Creates a socket(domain, type | SOCK_CLOEXEC) inside the network namespace at `path`.
absl::StatusOr<int> socketInNetns(const std::string& path, int domain, int type);

// The namespace's cookie (SO_NETNS_COOKIE), the key BPF programs use to recognise it.
absl::StatusOr<uint64_t> netnsCookie(const std::string& path);

}  // namespace ferry::netns
