// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "enroll/server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ferry::enroll {
namespace {

absl::StatusOr<sockaddr_un> unixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("enrollment socket path \"", path, "\" is empty or too long"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

bool someoneListens(const sockaddr_un& addr) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  bool live = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return live;
}

struct Client {
  int fd = -1;
  std::string in;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::start(const std::string& socket_path,
                                                      Handler& handler, int inherited_fd) {
  if (inherited_fd >= 0) {
    int stop = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop < 0) {
      return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
    }
    auto server = std::unique_ptr<Server>(new Server(socket_path, handler, inherited_fd, stop));
    server->thread_ = std::thread([s = server.get()] { s->run(); });
    return server;
  }
  auto addr = unixAddress(socket_path);
  if (!addr.ok()) {
    return addr.status();
  }
  std::error_code ec;
  auto parent = std::filesystem::path(socket_path).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot create ", parent.string(), ": ", ec.message()));
    }
  }
  if (std::filesystem::exists(socket_path, ec)) {
    if (someoneListens(*addr)) {
      return absl::AlreadyExistsError(
          absl::StrCat("another agent already serves enrollment on ", socket_path));
    }
    ::unlink(socket_path.c_str());
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  // Only root (ferry-cni runs as root) may enroll pods: umask keeps the window closed.
  mode_t old = ::umask(0177);
  int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
  ::umask(old);
  if (rc != 0 || ::listen(fd, 64) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    return absl::InternalError(absl::StrCat("cannot listen on ", socket_path, ": ", err));
  }
  int stop = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop < 0) {
    ::close(fd);
    ::unlink(socket_path.c_str());
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  auto server = std::unique_ptr<Server>(new Server(socket_path, handler, fd, stop));
  server->thread_ = std::thread([s = server.get()] { s->run(); });
  return server;
}

Server::Server(std::string path, Handler& handler, int listen_fd, int stop_fd)
    : path_(std::move(path)), handler_(handler), listen_fd_(listen_fd), stop_fd_(stop_fd) {}

Server::~Server() {
  int fd = release();
  if (fd >= 0) {
    ::close(fd);
    ::unlink(path_.c_str());
  }
  ::close(stop_fd_);
}

int Server::release() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_fd_, &one, sizeof(one));
  if (thread_.joinable()) {
    thread_.join();
  }
  int fd = listen_fd_;
  listen_fd_ = -1;
  return fd;
}

void Server::run() {
  std::vector<Client> clients;
  std::vector<pollfd> fds;
  while (true) {
    fds.clear();
    fds.push_back({stop_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const Client& c : clients) {
      fds.push_back({c.fd, POLLIN, 0});
    }
    int n = ::poll(fds.data(), fds.size(), -1);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if (fds[0].revents != 0) {
      break;
    }
    // Serve clients first (their indexes match fds[2..]), then accept new ones.
    for (size_t i = 0; i < clients.size(); ++i) {
      if (fds[i + 2].revents == 0) {
        continue;
      }
      Client& c = clients[i];
      char buf[4096];
      ssize_t got = ::recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
      bool close_client = got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR);
      if (got > 0) {
        c.in.append(buf, static_cast<size_t>(got));
      }
      size_t newline;
      while (!close_client && (newline = c.in.find('\n')) != std::string::npos) {
        std::string_view line(c.in.data(), newline);
        Reply reply;
        auto request = decodeRequest(line);
        if (!request.ok()) {
          malformed_.fetch_add(1, std::memory_order_relaxed);
          reply = Reply::failure(std::string(request.status().message()));
        } else {
          reply = handler_.handle(*request);
        }
        served_.fetch_add(1, std::memory_order_relaxed);
        c.in.erase(0, newline + 1);
        std::string out = encodeReply(reply);
        out.push_back('\n');
        // Replies are tiny; a client that does not drain its socket is dropped, not waited for.
        if (::send(c.fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT) !=
            static_cast<ssize_t>(out.size())) {
          close_client = true;
        }
      }
      if (!close_client && c.in.size() > kMaxLineBytes) {
        malformed_.fetch_add(1, std::memory_order_relaxed);
        std::string out = encodeReply(Reply::failure(
            absl::StrCat("request line exceeds ", kMaxLineBytes, " bytes; closing")));
        out.push_back('\n');
        ::send(c.fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        close_client = true;
      }
      if (close_client) {
        ::close(c.fd);
        c.fd = -1;
      }
    }
    std::erase_if(clients, [](const Client& c) { return c.fd < 0; });
    if (fds[1].revents & POLLIN) {
      while (true) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
          break;
        }
        if (static_cast<int>(clients.size()) >= kMaxClients) {
          ::close(fd);
          continue;
        }
        clients.push_back(Client{fd, {}});
      }
    }
  }
  for (Client& c : clients) {
    ::close(c.fd);
  }
}

}  // namespace ferry::enroll
