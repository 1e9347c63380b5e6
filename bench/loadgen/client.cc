// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "loadgen/client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "net/socket_address.h"

namespace ferry::loadgen {
namespace {

int64_t monoNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

using Address = net::SocketAddress;

absl::StatusOr<Address> resolve(const Target& t) {
  return net::SocketAddress::parse(t.host, t.port);
}

// Where a response ends: header length plus Content-Length, or -1 while incomplete, or -2
// when it runs to EOF (no Content-Length).
struct Parsed {
  int64_t end = -1;
  int status = 0;
  bool close = false;
  bool has_retry_after = false;
  std::string retry_after;
};

Parsed parseResponse(const std::string& in) {
  Parsed p;
  const size_t hdr = in.find("\r\n\r\n");
  if (hdr == std::string::npos) {
    return p;
  }
  if (in.size() < 12 || in.compare(0, 5, "HTTP/") != 0) {
    p.end = -3;
    return p;
  }
  int code = 0;
  (void)absl::SimpleAtoi(in.substr(9, 3), &code);
  p.status = code;
  std::string head = absl::AsciiStrToLower(in.substr(0, hdr + 2));
  p.close = head.find("\r\nconnection: close\r\n") != std::string::npos;
  if (const size_t ra = head.find("\r\nretry-after:"); ra != std::string::npos) {
    const size_t start = ra + 14;
    p.has_retry_after = true;
    p.retry_after = std::string(
        absl::StripAsciiWhitespace(head.substr(start, head.find("\r\n", start) - start)));
  }
  const size_t cl = head.find("\r\ncontent-length:");
  if (cl == std::string::npos) {
    p.end = -2;
    return p;
  }
  const size_t vstart = cl + 17;
  const size_t vend = head.find("\r\n", vstart);
  int64_t length = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(head.substr(vstart, vend - vstart)), &length)) {
    p.end = -3;
    return p;
  }
  p.end = static_cast<int64_t>(hdr + 4) + length;
  return p;
}

class Engine {
 public:
  Engine(const LoadOptions& options, Address address)
      : options_(options), address_(address), conns_(options.connections) {
    for (size_t i = 0; i < conns_.size(); ++i) {
      conns_[i].index = static_cast<uint32_t>(i);
    }
    const std::string head =
        absl::StrCat("GET ", options.target.path, " HTTP/1.1\r\nHost: ", options.target.host,
                     "\r\nUser-Agent: ferry-loadgen\r\n",
                     options.new_connection_per_request ? "Connection: close\r\n" : "");
    if (options.header_lines.empty()) {
      requests_.push_back(head + "\r\n");
    }
    for (const std::string& line : options.header_lines) {
      requests_.push_back(absl::StrCat(head, line, "\r\n\r\n"));
    }
  }
  ~Engine() {
    for (Conn& c : conns_) {
      closeConn(c);
    }
    if (timer_ >= 0) {
      ::close(timer_);
    }
    if (epoll_ >= 0) {
      ::close(epoll_);
    }
  }

  absl::StatusOr<LoadResult> run();

 private:
  struct Conn {
    int fd = -1;
    uint32_t index = 0;
    uint32_t generation = 0;  // bumped per socket, so a stale event of a closed one is ignored
    bool connecting = false;
    bool busy = false;
    int64_t origin_ns = 0;
    const std::string* request = nullptr;
    size_t written = 0;
    std::string in;
    std::deque<int64_t> pending;  // intended start times waiting for this connection
  };

  bool openConn(Conn& c);
  void closeConn(Conn& c);
  void start(Conn& c, int64_t origin_ns);
  void onEvent(Conn& c, uint32_t events);
  bool writeRequest(Conn& c);
  void readResponse(Conn& c);
  void finish(Conn& c, bool ok, int status);
  void next(Conn& c);
  void armTimer(int64_t at_ns);
  static uint64_t tagOf(const Conn& c) { return (uint64_t{c.index} << 32) | c.generation; }
  // The connection an event is for, or nullptr for the timer and for stale events.
  Conn* connOf(uint64_t tag) {
    if (tag == kTimerTag) {
      return nullptr;
    }
    Conn& c = conns_[tag >> 32];
    return c.fd >= 0 && c.generation == static_cast<uint32_t>(tag) ? &c : nullptr;
  }
  static constexpr uint64_t kTimerTag = ~uint64_t{0};

  const LoadOptions& options_;
  Address address_;
  std::vector<Conn> conns_;
  std::vector<std::string> requests_;  // one per header line, used in turn
  uint64_t started_ = 0;
  int64_t first_send_ns_ = -1, last_send_ns_ = -1, first_answer_ns_ = -1, last_answer_ns_ = -1;
  int epoll_ = -1;
  int timer_ = -1;
  int64_t start_ns_ = 0;
  int64_t end_ns_ = 0;
  int64_t last_done_ns_ = 0;
  LoadResult result_;
};

bool Engine::openConn(Conn& c) {
  c.fd = ::socket(address_.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    return false;
  }
  int one = 1;
  ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ++result_.connects;
  c.in.clear();
  if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&address_.storage), address_.len) != 0 &&
      errno != EINPROGRESS) {
    ::close(c.fd);
    c.fd = -1;
    return false;
  }
  c.connecting = true;
  ++c.generation;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
  ev.data.u64 = tagOf(c);
  ::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
  return true;
}

void Engine::closeConn(Conn& c) {
  if (c.fd >= 0) {
    ::close(c.fd);  // also leaves the epoll set
    c.fd = -1;
  }
  c.connecting = false;
  c.in.clear();
}

void Engine::start(Conn& c, int64_t origin_ns) {
  c.busy = true;
  c.origin_ns = origin_ns;
  c.request = &requests_[started_++ % requests_.size()];
  c.written = 0;
  last_send_ns_ = monoNs();
  if (first_send_ns_ < 0) {
    first_send_ns_ = last_send_ns_;
  }
  if (c.fd < 0 && !openConn(c)) {
    finish(c, false, 0);
    return;
  }
  if (!c.connecting && !writeRequest(c)) {
    finish(c, false, 0);
  }
}

bool Engine::writeRequest(Conn& c) {
  const std::string& request = *c.request;
  while (c.written < request.size()) {
    ssize_t n = ::send(c.fd, request.data() + c.written, request.size() - c.written, MSG_NOSIGNAL);
    if (n < 0) {
      return errno == EAGAIN;  // EPOLLOUT finishes it
    }
    c.written += static_cast<size_t>(n);
  }
  return true;
}

void Engine::onEvent(Conn& c, uint32_t events) {
  if (c.connecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (events & EPOLLERR)) {
      closeConn(c);
      if (c.busy) {
        finish(c, false, 0);
      }
      return;
    }
    if (!(events & EPOLLOUT)) {
      return;
    }
    c.connecting = false;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = tagOf(c);
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
    if (c.busy && !writeRequest(c)) {
      closeConn(c);
      finish(c, false, 0);
      return;
    }
  } else if ((events & EPOLLOUT) && c.busy && !writeRequest(c)) {
    closeConn(c);
    finish(c, false, 0);
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    readResponse(c);
  }
}

void Engine::readResponse(Conn& c) {
  char buf[16384];
  bool eof = false;
  for (;;) {
    ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      continue;
    }
    eof = n == 0 || errno != EAGAIN;
    break;
  }
  if (!c.busy) {
    // The server closed an idle keep-alive connection (or sent junk): reopen on next use.
    closeConn(c);
    return;
  }
  Parsed p = parseResponse(c.in);
  if (p.end == -3) {
    closeConn(c);
    finish(c, false, 0);
    return;
  }
  const bool complete =
      (p.end >= 0 && static_cast<int64_t>(c.in.size()) >= p.end) || (p.end == -2 && eof);
  if (!complete) {
    if (eof) {
      closeConn(c);
      finish(c, false, 0);
    }
    return;
  }
  const int status = p.status;
  if (eof || p.close || options_.new_connection_per_request) {
    closeConn(c);
  } else {
    c.in.erase(0, static_cast<size_t>(p.end));
  }
  if (status == 429 && p.has_retry_after) {
    ++result_.retry_after;
    if (result_.retry_after_values.size() < 5) {
      result_.retry_after_values.push_back(p.retry_after);
    }
  }
  finish(c, true, status);
}

void Engine::finish(Conn& c, bool ok, int status) {
  const int64_t now = monoNs();
  c.busy = false;
  if (ok) {
    ++result_.status[status];
    last_answer_ns_ = now;
    if (first_answer_ns_ < 0) {
      first_answer_ns_ = now;
    }
  }
  if (!ok) {
    ++result_.errors;
  } else if (status < 200 || status > 299) {
    ++result_.bad_status;
  } else {
    ++result_.completed;
    result_.latency.record(now - c.origin_ns);
    last_done_ns_ = std::max(last_done_ns_, now);
  }
  next(c);
}

void Engine::next(Conn& c) {
  if (!c.pending.empty()) {
    int64_t origin = c.pending.front();
    c.pending.pop_front();
    start(c, origin);
  } else if (options_.rate <= 0 && monoNs() < end_ns_) {
    if (result_.errors > 1000 && result_.completed == 0) {
      return;  // the target is down; run() reports it
    }
    start(c, monoNs());
  }
}

void Engine::armTimer(int64_t at_ns) {
  itimerspec spec{};
  spec.it_value.tv_sec = at_ns / 1000000000;
  spec.it_value.tv_nsec = at_ns % 1000000000;
  ::timerfd_settime(timer_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

absl::StatusOr<LoadResult> Engine::run() {
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  timer_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (epoll_ < 0 || timer_ < 0) {
    return absl::InternalError(absl::StrCat("epoll/timerfd: ", std::strerror(errno)));
  }
  epoll_event tev{};
  tev.events = EPOLLIN;
  tev.data.u64 = kTimerTag;
  ::epoll_ctl(epoll_, EPOLL_CTL_ADD, timer_, &tev);

  // Keep-alive connections are set up before the clock starts, so connects are not latency.
  if (!options_.new_connection_per_request) {
    for (Conn& c : conns_) {
      if (!openConn(c)) {
        return absl::UnavailableError(absl::StrCat("connect: ", std::strerror(errno)));
      }
    }
    const int64_t deadline = monoNs() + 5'000'000'000;
    size_t ready = 0;
    while (ready < conns_.size() && monoNs() < deadline) {
      epoll_event evs[64];
      int n = ::epoll_wait(epoll_, evs, 64, 100);
      for (int i = 0; i < n; ++i) {
        Conn* c = connOf(evs[i].data.u64);
        if (c != nullptr && c->connecting) {
          onEvent(*c, evs[i].events);
          if (c->fd < 0) {
            return absl::UnavailableError(absl::StrCat("cannot connect to ", options_.target.host,
                                                       ":", options_.target.port));
          }
          if (!c->connecting) {
            ++ready;
          }
        }
      }
    }
    if (ready < conns_.size()) {
      return absl::DeadlineExceededError("connections not established within 5 s");
    }
  }

  start_ns_ = monoNs();
  end_ns_ = start_ns_ + static_cast<int64_t>(options_.seconds * 1e9);
  const int64_t give_up_ns = end_ns_ + static_cast<int64_t>(options_.drain_seconds * 1e9);
  const bool open_loop = options_.rate > 0;
  OpenLoopSchedule schedule(start_ns_, open_loop ? options_.rate : 1, options_.connections);
  uint64_t next_index = 0;
  if (!open_loop) {
    for (Conn& c : conns_) {
      start(c, start_ns_);
    }
  }
  for (;;) {
    const int64_t now = monoNs();
    if (open_loop) {
      uint64_t due = schedule.dueCount(std::min(now, end_ns_ - 1));
      if (options_.requests > 0) {
        due = std::min(due, options_.requests);
      }
      for (; next_index < due; ++next_index) {
        Conn& c = conns_[schedule.connectionOf(next_index)];
        if (c.busy) {
          c.pending.push_back(schedule.intendedNs(next_index));
        } else {
          start(c, schedule.intendedNs(next_index));
        }
      }
    }
    const bool idle = std::none_of(conns_.begin(), conns_.end(),
                                   [](const Conn& c) { return c.busy || !c.pending.empty(); });
    if (now >= end_ns_ && idle) {
      break;
    }
    if (!open_loop && result_.errors > 1000 && result_.completed == 0) {
      return absl::UnavailableError(absl::StrCat("every request to ", options_.target.host, ":",
                                                 options_.target.port, " failed"));
    }
    if (now >= give_up_ns) {
      for (Conn& c : conns_) {
        result_.errors += c.pending.size() + (c.busy ? 1 : 0);
        c.pending.clear();
      }
      break;
    }
    int64_t wake = now < end_ns_ ? end_ns_ : give_up_ns;
    if (open_loop && now < end_ns_) {
      wake = std::min(wake, schedule.intendedNs(next_index));
    }
    armTimer(wake);
    epoll_event evs[256];
    int n = ::epoll_wait(epoll_, evs, 256, -1);
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.u64 == kTimerTag) {
        uint64_t ticks;
        (void)!::read(timer_, &ticks, sizeof(ticks));
      } else if (Conn* c = connOf(evs[i].data.u64); c != nullptr) {
        onEvent(*c, evs[i].events);
      }
    }
  }
  result_.seconds = static_cast<double>(std::max(last_done_ns_, end_ns_) - start_ns_) / 1e9;
  if (first_answer_ns_ >= 0) {
    result_.span_min_s =
        static_cast<double>(std::max<int64_t>(0, last_send_ns_ - first_answer_ns_)) / 1e9;
    result_.span_max_s = static_cast<double>(last_answer_ns_ - first_send_ns_) / 1e9;
  }
  if (!open_loop) {
    // Closed loop: rate over the measured window only.
    result_.seconds = options_.seconds;
  }
  return std::move(result_);
}

}  // namespace

absl::StatusOr<Target> parseTarget(const std::string& text) {
  Target t;
  std::string rest = text;
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    t.path = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  size_t colon;
  if (!rest.empty() && rest[0] == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return absl::InvalidArgumentError("bad target \"" + text + "\": want [v6addr]:port");
    }
    t.host = rest.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = rest.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError("bad target \"" + text + "\": want ip:port[/path]");
    }
    t.host = rest.substr(0, colon);
  }
  int port = 0;
  if (!absl::SimpleAtoi(rest.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError("bad port in target \"" + text + "\"");
  }
  t.port = static_cast<uint16_t>(port);
  if (auto a = resolve(t); !a.ok()) {
    return a.status();
  }
  return t;
}

absl::StatusOr<LoadResult> runLoad(const LoadOptions& given) {
  LoadOptions options = given;
  if (options.requests > 0) {
    if (options.rate <= 0) {
      return absl::InvalidArgumentError("a number of requests needs a rate");
    }
    options.seconds = static_cast<double>(options.requests) / options.rate;
  }
  if (options.connections < 1 || options.seconds <= 0 || options.rate < 0) {
    return absl::InvalidArgumentError("need connections >= 1, seconds > 0 and rate >= 0");
  }
  auto address = resolve(options.target);
  if (!address.ok()) {
    return address.status();
  }
  Engine engine(options, *address);
  return engine.run();
}

absl::StatusOr<std::vector<int>> holdConnections(const Target& target, int count) {
  auto address = resolve(target);
  if (!address.ok()) {
    return address.status();
  }
  const std::string request =
      absl::StrCat("GET ", target.path, " HTTP/1.1\r\nHost: ", target.host, "\r\n\r\n");
  std::vector<int> fds;
  fds.reserve(count);
  auto fail = [&fds](std::string what) {
    for (int fd : fds) {
      ::close(fd);
    }
    return absl::UnavailableError(what);
  };
  for (int i = 0; i < count; ++i) {
    int fd = ::socket(address->storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      return fail(absl::StrCat("socket #", i, ": ", std::strerror(errno)));
    }
    fds.push_back(fd);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address->storage), address->len) != 0) {
      return fail(absl::StrCat("connect #", i, ": ", std::strerror(errno)));
    }
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      return fail(absl::StrCat("send #", i, ": ", std::strerror(errno)));
    }
    std::string in;
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) {
        return fail(absl::StrCat("response #", i, ": ", n == 0 ? "EOF" : std::strerror(errno)));
      }
      in.append(buf, static_cast<size_t>(n));
      Parsed p = parseResponse(in);
      if (p.end == -3 || p.end == -2) {
        return fail(absl::StrCat("response #", i, " without Content-Length"));
      }
      if (p.end >= 0 && static_cast<int64_t>(in.size()) >= p.end) {
        break;
      }
    }
  }
  return fds;
}

void raiseFileLimit() {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
}

}  // namespace ferry::loadgen
