// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/upstream_pool.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/proxy/outbound.h"
#include "agent/worker_context.h"

namespace ferry::agent {

// Registered while idle; freed through deleteLater because an event for its fd may still be in
// the loop's current batch when it is taken or dropped.
struct UpstreamPool::Idle : public EventHandler, public Deferred {
  UpstreamPool* pool = nullptr;
  UpstreamConn conn;
  EventLoop::TimerId timer = 0;
  bool live = true;
  void onEvents(uint32_t) override {
    if (live) {
      pool->drop(this);  // the backend closed it or spoke out of turn: unusable
    }
  }
};

UpstreamPool::~UpstreamPool() {
  // Workers are stopped before their contexts go: no timer or event can reach these again.
  for (auto& [key, list] : idle_) {
    for (Idle* idle : list) {
      ::close(idle->conn.fd);
      delete idle;
    }
  }
}

std::string UpstreamPool::keyOf(const std::string& cluster, const LocalPod& source,
                                const std::string& ip, uint16_t port) {
  return cluster + "|" + source.info.uid + "|" + ip + "|" + std::to_string(port);
}

std::optional<UpstreamConn> UpstreamPool::take(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end() || it->second.empty()) {
    return std::nullopt;
  }
  Idle* idle = it->second.back();  // most recently used: the warmest
  it->second.pop_back();
  if (it->second.empty()) {
    idle_.erase(it);
  }
  ctx_.loop.remove(idle->conn.fd);
  if (idle->timer != 0) {
    ctx_.loop.cancelTimer(idle->timer);
  }
  idle->live = false;
  UpstreamConn conn = std::move(idle->conn);
  ctx_.loop.deleteLater(std::unique_ptr<Deferred>(idle));
  return conn;
}

void UpstreamPool::put(UpstreamConn conn) {
  auto* idle = new Idle;
  idle->pool = this;
  idle->conn = std::move(conn);
  if (!ctx_.loop.add(idle->conn.fd, EPOLLIN | EPOLLRDHUP, idle).ok()) {
    ::close(idle->conn.fd);
    delete idle;
    return;
  }
  idle->timer = ctx_.loop.addTimer(
      std::chrono::milliseconds(ctx_.shared.config->pool_idle_timeout_ms), [this, idle] {
        idle->timer = 0;
        drop(idle);
      });
  idle_[idle->conn.key].push_back(idle);
}

void UpstreamPool::drop(Idle* idle) {
  auto it = idle_.find(idle->conn.key);
  if (it != idle_.end()) {
    it->second.remove(idle);
    if (it->second.empty()) {
      idle_.erase(it);
    }
  }
  ctx_.loop.remove(idle->conn.fd);
  ::close(idle->conn.fd);
  if (idle->timer != 0) {
    ctx_.loop.cancelTimer(idle->timer);
  }
  idle->live = false;
  ctx_.loop.deleteLater(std::unique_ptr<Deferred>(idle));
}

absl::StatusOr<UpstreamConn> UpstreamPool::acquire(const std::string& key,
                                                   const std::shared_ptr<const LocalPod>& source,
                                                   const WorkloadState& state,
                                                   const Destination& destination,
                                                   const std::string& source_ip) {
  if (std::optional<UpstreamConn> idle = take(key)) {
    return *std::move(idle);
  }
  return open(key, source, state, destination, source_ip);
}

absl::StatusOr<UpstreamConn> UpstreamPool::open(const std::string& key,
                                                const std::shared_ptr<const LocalPod>& source,
                                                const WorkloadState& state,
                                                const Destination& destination,
                                                const std::string& source_ip) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
    return absl::InternalError(std::string("socketpair: ") + std::strerror(errno));
  }
  forwardToDestination(ctx_, source, state, destination, source_ip, pair[1]);
  return UpstreamConn{.fd = pair[0], .key = key};
}

size_t UpstreamPool::idleCount() const {
  size_t n = 0;
  for (const auto& [key, list] : idle_) {
    n += list.size();
  }
  return n;
}

UpstreamPool& upstreamPool(WorkerContext& ctx) {
  if (!ctx.upstreams) {
    ctx.upstreams = std::make_unique<UpstreamPool>(ctx);
  }
  return *ctx.upstreams;
}

}  // namespace ferry::agent
