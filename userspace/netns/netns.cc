// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "netns/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace ferry::netns {
namespace {

absl::Status errnoStatus(const std::string& what) {
  return absl::ErrnoToStatus(errno, what);
}

}  // namespace

absl::StatusOr<ScopedNetns> ScopedNetns::enter(const std::string& path) {
  int original = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original < 0) {
    return errnoStatus("open /proc/thread-self/ns/net");
  }
  int target = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    absl::Status status = errnoStatus(absl::StrCat("open network namespace ", path));
    ::close(original);
    return status;
  }
  int rc = ::setns(target, CLONE_NEWNET);
  int saved = errno;
  ::close(target);
  if (rc != 0) {
    ::close(original);
    errno = saved;
    return errnoStatus(absl::StrCat("setns into ", path));
  }
  return ScopedNetns(original);
}

ScopedNetns::ScopedNetns(ScopedNetns&& other) noexcept : original_fd_(other.original_fd_) {
  other.original_fd_ = -1;
}

ScopedNetns::~ScopedNetns() {
  if (original_fd_ < 0) {
    return;
  }
  // Returning to our own namespace cannot fail unless the kernel is out of memory; staying in a
  // pod's namespace would silently send later traffic from the wrong place, so stop instead.
  if (::setns(original_fd_, CLONE_NEWNET) != 0) {
    std::abort();
  }
  ::close(original_fd_);
}

absl::StatusOr<int> socketInNetns(const std::string& path, int domain, int type) {
  absl::StatusOr<ScopedNetns> scope = ScopedNetns::enter(path);
  if (!scope.ok()) {
    return scope.status();
  }
  int fd = ::socket(domain, type | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return errnoStatus(absl::StrCat("socket in ", path));
  }
  return fd;
}

absl::StatusOr<uint64_t> netnsCookie(const std::string& path) {
  absl::StatusOr<int> fd = socketInNetns(path, AF_INET, SOCK_DGRAM);
  if (!fd.ok()) {
    return fd.status();
  }
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  int rc = ::getsockopt(*fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len);
  int saved = errno;
  ::close(*fd);
  if (rc != 0) {
    errno = saved;
    return errnoStatus(absl::StrCat("SO_NETNS_COOKIE for ", path));
  }
  return cookie;
}

}  // namespace ferry::netns
