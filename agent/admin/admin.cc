// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/admin/admin.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/io/overload.h"
#include "http/status.h"
#include "log/log.h"
#include "net/socket_address.h"

namespace ferry::agent {
namespace {

std::optional<AdminServer::Request> parseRequestLine(const std::string& request) {
  size_t sp1 = request.find(' ');
  size_t sp2 = sp1 == std::string::npos ? sp1 : request.find(' ', sp1 + 1);
  size_t eol = request.find("\r\n");
  if (sp2 == std::string::npos || eol == std::string::npos || sp2 > eol) {
    return std::nullopt;
  }
  AdminServer::Request r;
  r.method = request.substr(0, sp1);
  std::string target = request.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) {
    for (absl::string_view part : absl::StrSplit(target.substr(q + 1), '&', absl::SkipEmpty())) {
      size_t eq = part.find('=');
      r.query[std::string(part.substr(0, eq))] =
          eq == absl::string_view::npos ? "" : std::string(part.substr(eq + 1));
    }
  }
  return r;
}

}  // namespace

AdminServer::Route AdminServer::getOnly(std::function<Response()> fn) {
  return [fn = std::move(fn)](const Request& r) {
    if (r.method != "GET" && r.method != "HEAD") {
      return Response{405, "text/plain", "use GET\n"};
    }
    return fn();
  };
}

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::start(const std::string& address,
                                                                uint16_t port,
                                                                std::map<std::string, Route> routes,
                                                                int inherited_fd) {
  std::optional<net::IpAddress> ip = net::IpAddress::parse(address);
  sockaddr_in addr{};
  if (ip && ip->v4) {
    addr = *reinterpret_cast<const sockaddr_in*>(net::SocketAddress::from(*ip, port).sa());
  } else {
    if (inherited_fd >= 0) {
      ::close(inherited_fd);
    }
    return absl::InvalidArgumentError("admin address \"" + address + "\" is not an IPv4 address");
  }
  int fd = inherited_fd;
  if (fd >= 0) {
    sockaddr_in bound{};
    socklen_t len = sizeof(bound);
    if (port == 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0 ||
        bound.sin_family != AF_INET || bound.sin_port != addr.sin_port ||
        bound.sin_addr.s_addr != addr.sin_addr.s_addr) {
      ::close(fd);
      fd = -1;
    }
  }
  if (fd < 0) {
    // Non-blocking: during a hand-over two agents poll one socket, and the one that loses the
    // race for a connection must not sit in accept().
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd, 16) != 0) {
      int saved = errno;
      ::close(fd);
      return absl::ErrnoToStatus(saved, absl::StrCat("admin endpoint ", address, ":", port));
    }
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int stop = ::eventfd(0, EFD_CLOEXEC);
  auto server = std::unique_ptr<AdminServer>(
      new AdminServer(fd, stop, ntohs(addr.sin_port), std::move(routes)));
  server->reserve_.hold();
  server->thread_ = std::thread([s = server.get()] { s->run(); });
  return server;
}

AdminServer::AdminServer(int fd, int stop_fd, uint16_t port, std::map<std::string, Route> routes)
    : fd_(fd), stop_fd_(stop_fd), port_(port), routes_(std::move(routes)) {}

AdminServer::~AdminServer() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_fd_, &one, sizeof(one));
  if (thread_.joinable()) {
    thread_.join();
  }
  ::close(fd_);
  ::close(stop_fd_);
}

void AdminServer::run() {
  // Out of descriptors (the data path holds them all), this endpoint must still answer: it keeps
  // one in reserve (taken in start()) to accept with, and pauses (not spins) when even that is
  // gone.
  FdReserve& reserve = reserve_;
  AcceptBackoff backoff;
  int pause_ms = -1;  // >= 0 while paused: the listener is not polled
  while (true) {
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {pause_ms >= 0 ? -1 : fd_, POLLIN, 0}};
    if (::poll(fds, 2, pause_ms) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if (fds[0].revents) {
      return;
    }
    pause_ms = -1;
    reserve.hold();
    int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0 && overloadCause(errno)) {
      client = acceptWithReserve(fd_, reserve, SOCK_CLOEXEC);
    }
    if (client >= 0) {
      backoff.reset();
      serve(client);
      ::close(client);
      reserve.hold();
      continue;
    }
    if (auto cause = overloadCause(errno)) {
      pause_ms = static_cast<int>(backoff.next().count());
      LOG_WARN_EVERY_SECOND("admin endpoint :", port_, ": accept: ", causeName(*cause),
                            "; pausing ", pause_ms, " ms");
    }
  }
}

void AdminServer::serve(int client) {
  timeval tv{2, 0};
  ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::string request;
  char buf[1024];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) {
    ssize_t n = ::recv(client, buf, sizeof(buf), 0);
    if (n <= 0) {
      break;
    }
    request.append(buf, static_cast<size_t>(n));
  }
  Response resp;
  auto request_line = parseRequestLine(request);
  if (!request_line) {
    resp = {400, "text/plain", "bad request\n"};
  } else {
    auto it = routes_.find(request_line->path);
    resp = it == routes_.end() ? Response{404, "text/plain", "not found\n"}
                               : it->second(*request_line);
  }
  std::string out = absl::StrCat("HTTP/1.0 ", resp.code, " ", http::reasonPhrase(resp.code),
                                 "\r\nContent-Type: ", resp.content_type,
                                 "\r\nContent-Length: ", resp.body.size(),
                                 "\r\nConnection: close\r\n\r\n", resp.body);
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = ::send(client, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      return;
    }
    sent += static_cast<size_t>(n);
  }
}

}  // namespace ferry::agent
