// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/listeners.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "agent/config.h"
#include "agent/log.h"
#include "agent/sockets.h"

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
  if (auto s = ctx_.loop.add(fd_, EPOLLIN, this); !s.ok()) {
    LOG_ERROR("pod ", pod_->info.name, ": cannot watch listener: ", s.ToString());
  }
}

PodListener::~PodListener() {
  if (resume_timer_ != 0) {
    ctx_.loop.cancelTimer(resume_timer_);
  } else {
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
  resume_timer_ = ctx_.loop.addTimer(backoff_.next(), [this] {
    resume_timer_ = 0;
    ctx_.fd_reserve.hold();  // taken back if a shed could not
    if (auto s = ctx_.loop.add(fd_, EPOLLIN, this); !s.ok()) {
      LOG_ERROR_EVERY_SECOND("pod ", pod_->info.name, ": cannot watch listener: ", s.ToString());
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

absl::Status PodListeners::start(std::shared_ptr<const LocalPod> pod,
                                 const std::vector<WorkerContext*>& workers, Capture& capture,
                                 uint32_t mark) {
  static constexpr ListenerKind kKinds[] = {ListenerKind::kOutbound, ListenerKind::kInboundPlain,
                                            ListenerKind::kHbone};
  std::vector<std::vector<int>> fds(workers.size());
  auto closeAll = [&] {
    for (auto& per : fds) {
      for (int fd : per) {
        ::close(fd);
      }
    }
  };
  for (size_t w = 0; w < workers.size(); ++w) {
    for (ListenerKind kind : kKinds) {
      auto fd = listenIn(pod->netns, portOf(kind), mark);
      if (!fd.ok()) {
        closeAll();
        return absl::Status(
            fd.status().code(),
            absl::StrCat("pod ", pod->info.ns, "/", pod->info.name, ": ", fd.status().message()));
      }
      fds[w].push_back(*fd);
    }
  }
  if (auto s = capture.addPod(pod->info, pod->netns, fds[0][1]); !s.ok()) {
    closeAll();
    return s;
  }
  for (size_t w = 0; w < workers.size(); ++w) {
    WorkerContext* ctx = workers[w];
    std::vector<int> mine = fds[w];
    ctx->loop.post([ctx, pod, mine] {
      auto& slot = ctx->listeners[pod->info.uid];
      slot.clear();
      for (size_t k = 0; k < mine.size(); ++k) {
        slot.push_back(std::make_unique<PodListener>(*ctx, pod, kKinds[k], mine[k]));
      }
    });
  }
  return absl::OkStatus();
}

void PodListeners::stop(const LocalPod& pod, const std::vector<WorkerContext*>& workers) {
  for (WorkerContext* ctx : workers) {
    std::string uid = pod.info.uid;
    ctx->loop.post([ctx, uid] { ctx->listeners.erase(uid); });
  }
}

}  // namespace ferry::agent
