// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/listeners.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/config.h"
#include "agent/log.h"

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
  ctx_.loop.remove(fd_);
  ::close(fd_);
}

void PodListener::onEvents(uint32_t) {
  // Bounded batch so one busy pod cannot starve the worker's other sockets.
  for (int i = 0; i < 64; ++i) {
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        LOG_WARN("pod ", pod_->info.name, ": accept on ", portOf(kind_), ": ",
                 std::strerror(errno));
      }
      return;
    }
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
