// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Network namespace helpers. The agent lives in the host namespace but opens its listening
// sockets and its outbound connections inside each pod's namespace: a socket keeps the
// namespace it was created in, so a thread enters the pod's namespace, creates the socket and
// leaves. setns() changes only the calling thread, so this never disturbs other workers.

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::net {

// An open network namespace, kept as a descriptor: the data path creates a socket in a pod's
// namespace per connection, and re-opening /run/netns/<pod> each time would cost a path lookup
// and a descriptor churn each.
class Netns {
 public:
  static absl::StatusOr<Netns> open(const std::string& path);
  // The namespace this thread is in now.
  static absl::StatusOr<Netns> current();
  Netns() = default;  // none: "stay where you are"
  Netns(Netns&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Netns& operator=(Netns&& other) noexcept;
  Netns(const Netns&) = delete;
  ~Netns();
  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  explicit Netns(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Enters a network namespace on this thread for the object's lifetime, then returns the thread
// to the namespace it was in (or to `home`). Not returning would send later traffic from the
// wrong place, so a failed return aborts.
class ScopedNetns {
 public:
  static absl::StatusOr<ScopedNetns> enter(const std::string& path);
  // Without opening anything: `home` is where the thread is now, kept open by the caller.
  static absl::StatusOr<ScopedNetns> enter(const Netns& target, const Netns& home);
  ScopedNetns(ScopedNetns&& other) noexcept;
  ScopedNetns& operator=(ScopedNetns&&) = delete;
  ScopedNetns(const ScopedNetns&) = delete;
  ~ScopedNetns();

 private:
  ScopedNetns(Netns owned, int back_fd) : owned_(std::move(owned)), back_fd_(back_fd) {}
  Netns owned_;  // the namespace to return to, when this object opened it
  int back_fd_;
};

// Moves the calling thread into the namespace open as `fd` (setns(2) and nothing else, so it is
// safe between fork() and exec(), where a child process enters a pod). Threads that must come
// back use ScopedNetns, which calls this.
bool enterNetns(int fd);

// Creates a socket(domain, type | SOCK_CLOEXEC) inside the network namespace at `path`.
absl::StatusOr<int> socketInNetns(const std::string& path, int domain, int type);

// The namespace's cookie (SO_NETNS_COOKIE), the key BPF programs use to recognise it.
absl::StatusOr<uint64_t> netnsCookie(const std::string& path);
// The cookie of the namespace a socket lives in.
absl::StatusOr<uint64_t> socketNetnsCookie(int fd);

}  // namespace ferry::net
