// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/proxy/listeners.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "agent/config.h"
#include "agent/io/sockets.h"
#include "agent/proxy/hbone_server.h"
#include "agent/proxy/inbound.h"
#include "agent/proxy/outbound.h"
#include "log/log.h"

namespace ferry::agent {

uint16_t portOf(ListenerKind kind) {
  switch (kind) {
    case ListenerKind::kOutbound:
      return kOutboundPort;
    case ListenerKind::kInboundPlain:
      return kInboundPlainPort;
    case ListenerKind::kHbone:
      return kHbonePort;
  }
  return 0;
}

PodListener::PodListener(WorkerContext& ctx, std::shared_ptr<const LocalPod> pod, ListenerKind kind,
                         int fd)
    : ctx_(ctx), pod_(std::move(pod)), kind_(kind), fd_(fd) {
  if (ctx_.accepting) {
    resume();
  }
}

void PodListener::resume() {
  if (watched_) {
    return;
  }
  if (auto s = ctx_.loop.add(fd_, EPOLLIN, this); !s.ok()) {
    LOG_ERROR("pod ", pod_->info.name, ": cannot watch listener: ", s.ToString());
    return;
  }
  watched_ = true;
}

PodListener::~PodListener() {
  if (resume_timer_ != 0) {
    ctx_.loop.cancelTimer(resume_timer_);
  } else if (watched_) {
    // Before close: a handed-over socket stays open in the next agent, so closing would not
    // take it out of this epoll set.
    ctx_.loop.remove(fd_);
  }
  ::close(fd_);
}

namespace {
// One limiter per cause, shared by every listener of the agent: a line a second per cause.
LogLimiter g_overload_log[kOverloadCauses];

std::atomic<int64_t>& overloadCounter(Stats& stats, OverloadCause cause) {
  switch (cause) {
    case OverloadCause::kEmfile:
      return stats.accept_overload_emfile;
    case OverloadCause::kEnfile:
      return stats.accept_overload_enfile;
    case OverloadCause::kEnobufs:
      return stats.accept_overload_enobufs;
    case OverloadCause::kEnomem:
      return stats.accept_overload_enomem;
  }
  return stats.accept_overload_emfile;
}
}  // namespace

void PodListener::onEvents(uint32_t) {
  // Bounded batch so one busy pod cannot starve the worker's other sockets.
  for (int i = 0; i < 64; ++i) {
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      backoff_.reset();
      dispatch(fd);
      continue;
    }
    int err = errno;
    if (err == EAGAIN || err == EINTR) {
      return;
    }
    if (err == ECONNABORTED) {
      continue;  // that one is gone; others may wait
    }
    if (auto cause = overloadCause(err)) {
      if (!onOverload(*cause, err)) {
        return;
      }
      continue;
    }
    LOG_WARN_EVERY_SECOND("pod ", pod_->info.name, ": accept on ", portOf(kind_), ": ",
                          std::strerror(err));
    return;
  }
}

bool PodListener::onOverload(OverloadCause cause, int err) {
  ctx_.stats.inc(overloadCounter(ctx_.stats, cause));
  const bool shed = ctx_.fd_reserve.held();
  LOG_WARN_LIMITED(
      g_overload_log[static_cast<int>(cause)], "pod ", pod_->info.name, ": accept on ",
      portOf(kind_), ": ", std::strerror(err),
      shed ? "; refusing pending connections with the fd reserve" : "; pausing accepts");
  if (shed) {
    int fd = acceptWithReserve(fd_, ctx_.fd_reserve, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      closeWithReset(fd);
      ctx_.stats.inc(ctx_.stats.accept_shed);
      if (ctx_.fd_reserve.hold()) {
        return true;  // the reserve is back: go on refusing what is queued
      }
    }
  }
  pause();
  return false;
}

void PodListener::pause() {
  if (resume_timer_ != 0) {
    return;
  }
  ctx_.loop.remove(fd_);
  watched_ = false;
  resume_timer_ = ctx_.loop.addTimer(backoff_.next(), [this] {
    resume_timer_ = 0;
    ctx_.fd_reserve.hold();  // taken back if a shed could not
    if (auto s = ctx_.loop.add(fd_, EPOLLIN, this); !s.ok()) {
      LOG_ERROR_EVERY_SECOND("pod ", pod_->info.name, ": cannot watch listener: ", s.ToString());
    } else {
      watched_ = true;
    }
  });
}

void PodListener::dispatch(int fd) {
  switch (kind_) {
    case ListenerKind::kOutbound:
      acceptOutbound(ctx_, pod_, fd);
      break;
    case ListenerKind::kInboundPlain:
      acceptInboundPlain(ctx_, pod_, fd);
      break;
    case ListenerKind::kHbone:
      acceptHbone(ctx_, pod_, fd);
      break;
  }
}

absl::StatusOr<PodListeners::Named> PodListeners::start(std::shared_ptr<const LocalPod> pod,
                                                        const std::vector<WorkerContext*>& workers,
                                                        Capture& capture, const PodSockets& sockets,
                                                        InheritedListeners* inherited) {
  static constexpr ListenerKind kKinds[] = {ListenerKind::kOutbound, ListenerKind::kInboundPlain,
                                            ListenerKind::kHbone};
  // Per worker: (kind, fd). Each worker gets one socket per kind; handed-over sockets beyond
  // the worker count go to workers in turn, so none of them (nor its queue) is closed.
  std::vector<std::vector<std::pair<ListenerKind, int>>> fds(workers.size());
  Named named;
  auto closeAll = [&] {
    for (auto& per : fds) {
      for (auto [kind, fd] : per) {
        ::close(fd);
      }
    }
  };
  for (ListenerKind kind : kKinds) {
    std::string name = podListenerName(pod->info.uid, portOf(kind));
    std::vector<int> taken = inherited ? inherited->take(name) : std::vector<int>{};
    for (size_t i = 0; i < std::max(taken.size(), workers.size()); ++i) {
      int fd = -1;
      if (i < taken.size()) {
        fd = taken[i];
      } else {
        auto opened = sockets.listenIn(pod->netns, portOf(kind));
        if (!opened.ok()) {
          closeAll();
          return absl::Status(opened.status().code(),
                              absl::StrCat("pod ", pod->info.ns, "/", pod->info.name, ": ",
                                           opened.status().message()));
        }
        fd = *opened;
      }
      fds[i % workers.size()].push_back({kind, fd});
      named.push_back({name, fd});
    }
  }
  int inbound = -1;
  for (auto [kind, fd] : fds[0]) {
    if (kind == ListenerKind::kInboundPlain && inbound < 0) {
      inbound = fd;
    }
  }
  if (auto s = capture.addPod(pod->info, pod->netns, inbound); !s.ok()) {
    closeAll();
    return s;
  }
  for (size_t w = 0; w < workers.size(); ++w) {
    WorkerContext* ctx = workers[w];
    ctx->loop.post([ctx, pod, mine = fds[w]] {
      auto& slot = ctx->listeners[pod->info.uid];
      slot.clear();
      for (auto [kind, fd] : mine) {
        slot.push_back(std::make_unique<PodListener>(*ctx, pod, kind, fd));
      }
    });
  }
  return named;
}

void PodListeners::resumeAll(const std::vector<WorkerContext*>& workers) {
  for (WorkerContext* ctx : workers) {
    ctx->loop.post([ctx] {
      ctx->accepting = true;
      for (auto& [uid, listeners] : ctx->listeners) {
        for (auto& l : listeners) {
          l->resume();
        }
      }
    });
  }
}

void PodListeners::stop(const LocalPod& pod, const std::vector<WorkerContext*>& workers) {
  for (WorkerContext* ctx : workers) {
    std::string uid = pod.info.uid;
    ctx->loop.post([ctx, uid] { ctx->listeners.erase(uid); });
  }
}

}  // namespace ferry::agent
