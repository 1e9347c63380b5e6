// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "enroll/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ferry::enroll {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

using Clock = std::chrono::steady_clock;

absl::Status waitFor(int fd, short events, Clock::time_point deadline, const std::string& what) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return absl::DeadlineExceededError(absl::StrCat("timed out ", what));
    }
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) {
      return absl::OkStatus();
    }
    if (n < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("poll while ", what, ": ", std::strerror(errno)));
    }
  }
}

}  // namespace

absl::StatusOr<Reply> call(const std::string& socket_path, const Request& request,
                           std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket path \"", socket_path, "\" is too long for a Unix socket"));
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot reach the ferry agent at ", socket_path, ": ", std::strerror(errno)));
  }
  std::string line = encodeRequest(request);
  line.push_back('\n');
  size_t sent = 0;
  while (sent < line.size()) {
    if (auto s = waitFor(fd.get(), POLLOUT, deadline, "sending to the agent"); !s.ok()) {
      return s;
    }
    ssize_t n =
        ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      return absl::UnavailableError(absl::StrCat("send to agent: ", std::strerror(errno)));
    }
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[4096];
  while (reply.find('\n') == std::string::npos) {
    if (reply.size() > kMaxLineBytes) {
      return absl::DataLossError("agent reply is longer than the protocol allows");
    }
    if (auto s = waitFor(fd.get(), POLLIN, deadline, "waiting for the agent's reply"); !s.ok()) {
      return s;
    }
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      return absl::UnavailableError(absl::StrCat("recv from agent: ", std::strerror(errno)));
    }
    if (n == 0) {
      return absl::UnavailableError("the agent closed the connection without a reply");
    }
    reply.append(buf, static_cast<size_t>(n));
  }
  reply.resize(reply.find('\n'));
  auto decoded = decodeReply(reply);
  if (!decoded.ok()) {
    return absl::DataLossError(absl::StrCat("bad reply from agent: ", decoded.status().message()));
  }
  return decoded;
}

namespace {
absl::Status fold(absl::StatusOr<Reply> reply, const std::string& what) {
  if (!reply.ok()) {
    return reply.status();
  }
  if (!reply->ok) {
    return absl::FailedPreconditionError(absl::StrCat("agent refused ", what, ": ", reply->error));
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status addPod(const std::string& socket_path, const PodInfo& pod) {
  Request r;
  r.op = Op::kAdd;
  r.pod = pod;
  r.uid = pod.uid;
  return fold(call(socket_path, r), absl::StrCat("add of pod ", pod.ns, "/", pod.name));
}

absl::Status delPod(const std::string& socket_path, const std::string& uid) {
  Request r;
  r.op = Op::kDel;
  r.uid = uid;
  return fold(call(socket_path, r), absl::StrCat("del of pod uid ", uid));
}

absl::Status checkPod(const std::string& socket_path, const std::string& uid) {
  Request r;
  r.op = Op::kCheck;
  r.uid = uid;
  return fold(call(socket_path, r), absl::StrCat("check of pod uid ", uid));
}

}  // namespace ferry::enroll
