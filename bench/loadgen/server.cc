// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "loadgen/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "net/socket_address.h"

namespace ferry::loadgen {
namespace {

absl::StatusOr<int> listenOn(const std::string& address, uint16_t port) {
  absl::StatusOr<net::SocketAddress> at = net::SocketAddress::parse(address, port);
  if (!at.ok()) {
    return absl::InvalidArgumentError("not a numeric listen address: \"" + address + "\"");
  }
  int fd = ::socket(at->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (::bind(fd, at->sa(), at->len) != 0 || ::listen(fd, 4096) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("listen on ", address, ":", port, ": ", err));
  }
  return fd;
}

uint16_t boundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

struct Client {
  std::string in;
  std::string out;
  bool close_after = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::start(const ServerOptions& options) {
  if (options.threads < 1 || options.threads > 64) {
    return absl::InvalidArgumentError("server threads must be between 1 and 64");
  }
  auto server = std::unique_ptr<Server>(new Server());
  const std::string body(options.body_bytes, 'x');
  const std::string head = absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n",
                                        "Content-Length: ", options.body_bytes, "\r\n");
  server->response_ = absl::StrCat(head, "\r\n", body);
  server->close_response_ = absl::StrCat(head, "Connection: close\r\n\r\n", body);
  server->stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  uint16_t port = options.port;
  for (int i = 0; i < options.threads; ++i) {
    auto fd = listenOn(options.address, port);
    if (!fd.ok()) {
      return fd.status();
    }
    port = boundPort(*fd);  // the next threads share the port picked for the first
    server->listeners_.push_back(*fd);
  }
  server->port_ = port;
  for (int fd : server->listeners_) {
    server->threads_.emplace_back([s = server.get(), fd] { s->serve(fd); });
  }
  return server;
}

Server::~Server() {
  uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof(one));
  for (std::thread& t : threads_) {
    t.join();
  }
  for (int fd : listeners_) {
    ::close(fd);
  }
  ::close(stop_fd_);
}

void Server::serve(int listener) {
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  ev.data.fd = stop_fd_;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, stop_fd_, &ev);
  std::unordered_map<int, Client> clients;
  auto drop = [&](int fd) {
    ::close(fd);
    clients.erase(fd);
  };
  // Writes what is queued; false when the connection is finished with (error or closed).
  auto flush = [&](int fd, Client& c) {
    while (!c.out.empty()) {
      ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno != EAGAIN) {
          return false;
        }
        epoll_event w{};
        w.events = EPOLLIN | EPOLLOUT;
        w.data.fd = fd;
        ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &w);
        return true;
      }
      c.out.erase(0, static_cast<size_t>(n));
    }
    if (c.close_after) {
      return false;
    }
    epoll_event r{};
    r.events = EPOLLIN;
    r.data.fd = fd;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &r);
    return true;
  };
  bool running = true;
  while (running) {
    epoll_event evs[256];
    int n = ::epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; ++i) {
      const int fd = evs[i].data.fd;
      if (fd == stop_fd_) {
        running = false;
        continue;
      }
      if (fd == listener) {
        for (;;) {
          int c = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) {
            break;
          }
          int one = 1;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          clients[c];
          ++connections_;
          epoll_event r{};
          r.events = EPOLLIN;
          r.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &r);
        }
        continue;
      }
      auto it = clients.find(fd);
      if (it == clients.end()) {
        continue;
      }
      Client& c = it->second;
      bool eof = false;
      char buf[16384];
      for (;;) {
        ssize_t got = ::recv(fd, buf, sizeof(buf), 0);
        if (got > 0) {
          c.in.append(buf, static_cast<size_t>(got));
          continue;
        }
        eof = got == 0 || errno != EAGAIN;
        break;
      }
      // Answer every complete request head (pipelined ones too); bodies are not expected.
      size_t end;
      while (!c.close_after && (end = c.in.find("\r\n\r\n")) != std::string::npos) {
        std::string head = absl::AsciiStrToLower(c.in.substr(0, end + 2));
        c.in.erase(0, end + 4);
        c.close_after = head.find("\r\nconnection: close\r\n") != std::string::npos ||
                        head.rfind("http/1.0", head.find("\r\n")) != std::string::npos;
        c.out += c.close_after ? close_response_ : response_;
        ++requests_;
      }
      if (!flush(fd, c) || (eof && c.out.empty())) {
        drop(fd);
      }
    }
  }
  for (auto& [fd, c] : clients) {
    ::close(fd);
  }
  ::close(ep);
}

}  // namespace ferry::loadgen
