// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/drain/handover.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/io/sockets.h"
#include "log/log.h"

namespace ferry::agent {
namespace {

constexpr int kRecordBytes = 64 * 1024;
constexpr int kHandshakeTimeoutMs = 10000;
constexpr char kReadyResume[] = "ready resume-v1";

absl::StatusOr<sockaddr_un> unixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("handover socket path \"", path, "\""));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// A SOCK_SEQPACKET Unix socket and the address of `path`.
absl::StatusOr<int> openSocket(const std::string& path, sockaddr_un& addr) {
  auto parsed = unixAddress(path);
  if (!parsed.ok()) {
    return parsed.status();
  }
  addr = *parsed;
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, "handover: socket");
  }
  return fd;
}

// One record and the descriptors riding on it (close-on-exec). Empty text: the peer closed.
absl::StatusOr<std::string> receive(int fd, std::vector<int>* fds) {
  std::string text(kRecordBytes, '\0');
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerRecord)];
  iovec iov{text.data(), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return absl::ErrnoToStatus(errno, "handover: recvmsg");
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const int* data = reinterpret_cast<const int*>(CMSG_DATA(c));
      for (size_t i = 0; i < count; ++i) {
        if (fds != nullptr) {
          fds->push_back(data[i]);
        } else {
          ::close(data[i]);
        }
      }
    }
  }
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    return absl::DataLossError("handover: a record was truncated");
  }
  text.resize(static_cast<size_t>(n));
  return text;
}

bool sendRecord(int fd, const std::string& text, const std::vector<int>& fds) {
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerRecord)];
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(text.size());
}

// Waits for `fd` to be readable (or hung up); 0 timeout, 1 readable, -1 `stop_fd` fired.
int waitReadable(int fd, int stop_fd, int timeout_ms) {
  pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
  int n;
  do {
    n = ::poll(p, stop_fd >= 0 ? 2 : 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  if (n < 0 || (stop_fd >= 0 && p[1].revents != 0)) {
    return -1;
  }
  return p[0].revents != 0 ? 1 : 0;
}

}  // namespace

std::string podListenerName(const std::string& uid, uint16_t port) {
  return absl::StrCat("pod/", uid, "/", port);
}

void InheritedListeners::add(const std::string& name, int fd) {
  std::lock_guard lock(mu_);
  fds_.emplace(name, fd);
}

std::vector<int> InheritedListeners::take(const std::string& name) {
  std::lock_guard lock(mu_);
  std::vector<int> out;
  auto [begin, end] = fds_.equal_range(name);
  for (auto it = begin; it != end; ++it) {
    out.push_back(it->second);
  }
  fds_.erase(begin, end);
  return out;
}

int InheritedListeners::takeOne(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = fds_.find(name);
  if (it == fds_.end()) {
    return -1;
  }
  int fd = it->second;
  fds_.erase(it);
  return fd;
}

size_t InheritedListeners::size() const {
  std::lock_guard lock(mu_);
  return fds_.size();
}

void InheritedListeners::closeRest() {
  std::lock_guard lock(mu_);
  for (const auto& [name, fd] : fds_) {
    ::close(fd);
  }
  fds_.clear();
}

absl::StatusOr<std::unique_ptr<Predecessor>> Predecessor::takeOver(const std::string& path,
                                                                   InheritedListeners& into) {
  sockaddr_un addr{};
  auto opened = openSocket(path, addr);
  if (!opened.ok()) {
    return opened.status();
  }
  int fd = *opened;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    if (err == ENOENT || err == ECONNREFUSED) {
      return nullptr;  // no agent runs here: a first start, or after a crash
    }
    return absl::ErrnoToStatus(err, absl::StrCat("handover: connect ", path));
  }
  std::unique_ptr<Predecessor> p(new Predecessor(fd));
  ucred peer{};
  socklen_t len = sizeof(peer);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0) {
    p->pid_ = peer.pid;
  }
  if (!sendRecord(fd, absl::StrCat("take ", ::getpid()), {})) {
    return absl::ErrnoToStatus(errno, "handover: send take");
  }
  while (true) {
    if (waitReadable(fd, -1, kHandshakeTimeoutMs) != 1) {
      return absl::DeadlineExceededError("handover: the running agent did not answer in 10 s");
    }
    std::vector<int> fds;
    auto text = receive(fd, &fds);
    if (!text.ok()) {
      for (int f : fds) {
        ::close(f);
      }
      return text.status();
    }
    if (*text == "end") {
      return p;
    }
    std::vector<std::string> lines = absl::StrSplit(*text, '\n');
    if (lines.empty() || lines[0] != "fds" || lines.size() - 1 != fds.size()) {
      for (int f : fds) {
        ::close(f);
      }
      return absl::DataLossError(text->empty()
                                     ? "handover: the running agent went away during the hand-over"
                                     : "handover: malformed record from the running agent");
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      into.add(lines[i + 1], fds[i]);
    }
  }
}

Predecessor::~Predecessor() {
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_fd_, &one, sizeof(one));
  }
  if (watcher_.joinable()) {
    watcher_.join();
  }
  ::close(fd_);
  if (stop_fd_ >= 0) {
    ::close(stop_fd_);
  }
}

bool Predecessor::waitGone(int ms) {
  if (gone_flag_.load()) {
    return true;
  }
  // Before "ready" the predecessor sends nothing: readable means it closed.
  if (!ready_sent_.load() && waitReadable(fd_, -1, ms) == 1) {
    gone_flag_ = true;
  }
  return gone_flag_.load();
}

void Predecessor::ready() {
  if (ready_sent_.exchange(true)) {
    return;
  }
  if (!gone_flag_.load() && !sendRecord(fd_, stream_ ? kReadyResume : "ready", {})) {
    gone_flag_ = true;
  }
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  watcher_ = std::thread([this] { watch(); });
}

void Predecessor::watch() {
  StreamDecoder streams;
  while (!gone_flag_.load()) {
    int r = waitReadable(fd_, stop_fd_, -1);
    if (r < 0) {
      return;  // we are stopping
    }
    std::vector<int> fds;
    auto text = receive(fd_, &fds);
    if (!text.ok() || text->empty()) {
      for (int f : fds) {
        ::close(f);
      }
      break;
    }
    if (StreamDecoder::isStreamRecord(*text)) {
      auto stream = streams.feed(*text, std::move(fds));
      if (!stream.ok()) {
        LOG_ERROR(stream.status().ToString(), "; that stream is lost");
      } else if (stream->has_value()) {
        ++streams_received_;
        if (stream_) {
          stream_(std::move(**stream));
        } else {
          ::close((*stream)->app_fd);
        }
      }
      continue;
    }
    for (int f : fds) {
      ::close(f);
    }
    std::vector<std::string> words = absl::StrSplit(*text, ' ');
    int64_t n = 0;
    if (words.size() == 3 && words[0] == "draining" && absl::SimpleAtoi(words[2], &n)) {
      connections_ = n;
    }
  }
  gone_flag_ = true;
  connections_ = 0;
  LOG_INFO("handover: predecessor (pid ", pid_.load(), ") has exited");
  if (gone_) {
    gone_();
  }
}

absl::StatusOr<std::unique_ptr<HandoverServer>> HandoverServer::start(const std::string& path,
                                                                      Callbacks callbacks) {
  sockaddr_un addr{};
  auto opened = openSocket(path, addr);
  if (!opened.ok()) {
    return opened.status();
  }
  int fd = *opened;
  ::unlink(path.c_str());
  mode_t old = ::umask(0177);  // root only: the peer gets every listener of the node
  int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  ::umask(old);
  struct stat st {};
  if (rc != 0 || ::listen(fd, 4) != 0 || ::stat(path.c_str(), &st) != 0) {
    int err = errno;
    ::close(fd);
    return absl::ErrnoToStatus(err, absl::StrCat("handover: cannot listen on ", path));
  }
  int stop = ::eventfd(0, EFD_CLOEXEC);
  std::unique_ptr<HandoverServer> s(
      new HandoverServer(path, fd, stop, st.st_ino, std::move(callbacks)));
  s->thread_ = std::thread([raw = s.get()] { raw->run(); });
  return s;
}

HandoverServer::HandoverServer(std::string path, int fd, int stop_fd, ino_t inode,
                               Callbacks callbacks)
    : path_(std::move(path)),
      fd_(fd),
      stop_fd_(stop_fd),
      inode_(inode),
      callbacks_(std::move(callbacks)) {}

HandoverServer::~HandoverServer() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_fd_, &one, sizeof(one));
  if (thread_.joinable()) {
    thread_.join();
  }
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && st.st_ino == inode_) {
    ::unlink(path_.c_str());
  }
  ::close(fd_);
  ::close(stop_fd_);
}

void HandoverServer::run() {
  while (true) {
    if (waitReadable(fd_, stop_fd_, -1) < 0) {
      return;
    }
    int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      continue;
    }
    bool go_on = serve(client);
    ::close(client);
    if (!go_on) {
      return;
    }
  }
}

bool HandoverServer::send(int client, const std::string& text, const std::vector<int>& fds) {
  if (sendRecord(client, text, fds)) {
    return true;
  }
  LOG_WARN("handover: send: ", std::strerror(errno));
  return false;
}

void HandoverServer::sendStreams(int client, bool first) {
  std::vector<HandedStream> streams = callbacks_.handStreams();
  if (streams.empty() && !first) {
    return;
  }
  size_t sent = 0;
  for (const HandedStream& s : streams) {
    bool ok = true;
    for (const HandoverRecord& r : encodeStream(s, kRecordBytes)) {
      ok = ok && send(client, r.text, r.fds);
    }
    sent += ok ? 1 : 0;
    if (ok) {
      ::close(s.app_fd);
    } else {
      closeWithReset(s.app_fd);
    }
  }
  LOG_INFO("handover: handed ", sent, " of ", streams.size(), " established streams over");
  if (callbacks_.handed) {
    callbacks_.handed(sent);
  }
}

bool HandoverServer::serve(int client) {
  int r = waitReadable(client, stop_fd_, kHandshakeTimeoutMs);
  if (r <= 0) {
    return r == 0;
  }
  auto take = receive(client, nullptr);
  int64_t successor = 0;
  if (!take.ok() || take->rfind("take ", 0) != 0 ||
      !absl::SimpleAtoi(take->substr(5), &successor)) {
    LOG_WARN("handover: a client sent no \"take\"; ignored");
    return true;
  }
  LOG_INFO("handover: agent pid ", successor, " takes over the listeners");
  std::vector<std::pair<std::string, int>> listeners = callbacks_.collect();
  bool sent = true;
  for (size_t at = 0; sent && at < listeners.size(); at += kMaxFdsPerRecord) {
    std::string text = "fds";
    std::vector<int> fds;
    for (size_t i = at; i < listeners.size() && i < at + kMaxFdsPerRecord; ++i) {
      absl::StrAppend(&text, "\n", listeners[i].first);
      fds.push_back(listeners[i].second);
    }
    sent = send(client, text, fds);
  }
  sent = sent && send(client, "end", {});
  // Wait for "ready" as long as the successor lives (it may wait for its certificates).
  r = sent ? waitReadable(client, stop_fd_, -1) : 1;
  if (r < 0) {
    return false;
  }
  auto ready = sent ? receive(client, nullptr) : absl::StatusOr<std::string>("");
  if (!ready.ok() || (*ready != "ready" && *ready != kReadyResume)) {
    LOG_WARN("handover: agent pid ", successor, " went away before it was ready; serving on");
    callbacks_.onAbort();
    return true;
  }
  callbacks_.onReady(static_cast<pid_t>(successor));
  const bool streams = *ready == kReadyResume && callbacks_.handStreams;
  if (streams) {
    sendStreams(client, /*first=*/true);
  }
  int64_t reported = -1;
  while (true) {
    int64_t now = callbacks_.connections();
    if (now != reported &&
        !sendRecord(client, absl::StrCat("draining ", ::getpid(), " ", now), {})) {
      return true;  // the successor is gone; nothing is left to give a next one
    }
    reported = now;
    if (streams) {
      // Streams that became resumable or were suspended since (a peer's agent restarting at
      // the same time) go too, every 50 ms while this agent drains.
      sendStreams(client, /*first=*/false);
    }
    r = waitReadable(client, stop_fd_, 50);
    if (r < 0) {
      return false;
    }
    if (r == 1) {
      return true;
    }
  }
}

}  // namespace ferry::agent
