// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "net/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace ferry::net {
namespace {

absl::Status errnoStatus(const std::string& what) {
  return absl::ErrnoToStatus(errno, what);
}

}  // namespace

bool enterNetns(int fd) {
  return ::setns(fd, CLONE_NEWNET) == 0;
}

absl::StatusOr<Netns> Netns::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errnoStatus(absl::StrCat("open network namespace ", path));
  }
  return Netns(fd);
}

absl::StatusOr<Netns> Netns::current() {
  return open("/proc/thread-self/ns/net");
}

Netns& Netns::operator=(Netns&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

Netns::~Netns() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

absl::StatusOr<ScopedNetns> ScopedNetns::enter(const std::string& path) {
  absl::StatusOr<Netns> original = Netns::current();
  if (!original.ok()) {
    return original.status();
  }
  absl::StatusOr<Netns> target = Netns::open(path);
  if (!target.ok()) {
    return target.status();
  }
  if (!enterNetns(target->fd())) {
    return errnoStatus(absl::StrCat("setns into ", path));
  }
  int back = original->fd();
  return ScopedNetns(std::move(*original), back);
}

absl::StatusOr<ScopedNetns> ScopedNetns::enter(const Netns& target, const Netns& home) {
  if (!target.valid() || !home.valid()) {
    return absl::FailedPreconditionError("network namespace not open");
  }
  if (!enterNetns(target.fd())) {
    return errnoStatus("setns into a pod network namespace");
  }
  return ScopedNetns(Netns(), home.fd());
}

ScopedNetns::ScopedNetns(ScopedNetns&& other) noexcept
    : owned_(std::move(other.owned_)), back_fd_(other.back_fd_) {
  other.back_fd_ = -1;
}

ScopedNetns::~ScopedNetns() {
  if (back_fd_ < 0) {
    return;
  }
  // Returning to our own namespace cannot fail unless the kernel is out of memory; staying in a
  // pod's namespace would silently send later traffic from the wrong place, so stop instead.
  if (!enterNetns(back_fd_)) {
    std::fprintf(stderr, "cannot return to the original network namespace: %s; aborting\n",
                 std::strerror(errno));
    std::abort();
  }
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

absl::StatusOr<uint64_t> socketNetnsCookie(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (::getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) {
    return errnoStatus("getsockopt(SO_NETNS_COOKIE) (needs Linux 5.14)");
  }
  return cookie;
}

absl::StatusOr<uint64_t> netnsCookie(const std::string& path) {
  absl::StatusOr<int> fd = socketInNetns(path, AF_INET, SOCK_DGRAM);
  if (!fd.ok()) {
    return fd.status();
  }
  absl::StatusOr<uint64_t> cookie = socketNetnsCookie(*fd);
  ::close(*fd);
  return cookie;
}

}  // namespace ferry::net
