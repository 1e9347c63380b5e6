// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/io/overload.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace ferry::agent {

std::optional<OverloadCause> overloadCause(int err) {
  switch (err) {
    case EMFILE:
      return OverloadCause::kEmfile;
    case ENFILE:
      return OverloadCause::kEnfile;
    case ENOBUFS:
      return OverloadCause::kEnobufs;
    case ENOMEM:
      return OverloadCause::kEnomem;
    default:
      return std::nullopt;
  }
}

const char* causeName(OverloadCause cause) {
  switch (cause) {
    case OverloadCause::kEmfile:
      return "emfile";
    case OverloadCause::kEnfile:
      return "enfile";
    case OverloadCause::kEnobufs:
      return "enobufs";
    case OverloadCause::kEnomem:
      return "enomem";
  }
  return "?";
}

bool FdReserve::hold() {
  if (fd_ < 0) {
    fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  return fd_ >= 0;
}

void FdReserve::release() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

int acceptWithReserve(int listener, FdReserve& reserve, int flags) {
  if (!reserve.held()) {
    errno = EMFILE;
    return -1;
  }
  reserve.release();
  int fd = ::accept4(listener, nullptr, nullptr, flags);
  if (fd < 0) {
    int saved = errno;
    reserve.hold();
    errno = saved;
  }
  return fd;
}

}  // namespace ferry::agent
