// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/upstream_pool.h"

#include "agent/worker_context.h"

namespace ferry::agent {

// While idle, the link reports here; taken or dropped, it is rebound or discarded first, so no
// report reaches an Idle that is gone.
struct UpstreamPool::Idle {
  UpstreamConn conn;
  EventLoop::TimerId timer = 0;
};

UpstreamPool::~UpstreamPool() {
  // Workers are stopped before their contexts go: no timer or event can reach these again.
  for (auto& [key, list] : idle_) {
    for (Idle* idle : list) {
      idle->conn.link->close(/*reset=*/false);
      delete idle;
    }
  }
}

std::string UpstreamPool::keyOf(const std::string& cluster, const LocalPod& source,
                                const std::string& ip, uint16_t port, bool socket) {
  return cluster + "|" + source.info.uid + "|" + ip + "|" + std::to_string(port) +
         (socket ? "|socket" : "");
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
  if (idle->timer != 0) {
    ctx_.loop.cancelTimer(idle->timer);
  }
  UpstreamConn conn = std::move(idle->conn);
  conn.link->bind(nullptr);
  delete idle;
  return conn;
}

void UpstreamPool::put(UpstreamConn conn) {
  auto* idle = new Idle;
  idle->conn = std::move(conn);
  UpstreamLink& link = *idle->conn.link;
  link.bind([this, idle] {
    if (idle->conn.link->brokenWhileIdle()) {
      drop(idle);
    }
  });
  link.want(/*read=*/true, /*write=*/false);
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
  if (idle->timer != 0) {
    ctx_.loop.cancelTimer(idle->timer);
  }
  discard(ctx_.loop, std::move(idle->conn.link), /*reset=*/false);
  delete idle;
}

void UpstreamPool::discard(EventLoop& loop, std::unique_ptr<UpstreamLink> link, bool reset) {
  if (link != nullptr) {
    link->close(reset);
    loop.deleteLater(std::move(link));
  }
}

absl::StatusOr<UpstreamConn> UpstreamPool::acquire(const std::string& key,
                                                   const std::shared_ptr<const LocalPod>& source,
                                                   const WorkloadState& state,
                                                   const Destination& destination,
                                                   const std::string& source_ip, bool socket) {
  if (std::optional<UpstreamConn> idle = take(key)) {
    return *std::move(idle);
  }
  return open(key, source, state, destination, source_ip, socket);
}

absl::StatusOr<UpstreamConn> UpstreamPool::open(const std::string& key,
                                                const std::shared_ptr<const LocalPod>& source,
                                                const WorkloadState& state,
                                                const Destination& destination,
                                                const std::string& source_ip, bool socket) {
  auto link = openUpstreamLink(ctx_, source, state, destination, source_ip, socket);
  if (!link.ok()) {
    return link.status();
  }
  return UpstreamConn{.link = *std::move(link), .key = key};
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
