// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Pooled outbound HBONE connections of one worker, keyed by (source pod, destination pod IP):
// the connection is dialled from inside the source pod's namespace (so it carries the pod's
// IP) with the source pod's certificate, and pins the destination workload's identity. A new
// stream goes to the connection of its key that carries the fewest streams and still accepts
// one (under the peer's concurrent-stream limit, no GOAWAY). Concurrent streams can be spread:
// while that connection carries a stream and the key has fewer than --pool-connections-per-peer
// connections (default 1: no spreading), a new one is opened instead, so that one pod pair's bulk
// streams do not share one TLS connection, one TLS record stream and one worker of the
// destination agent. Connections with no streams close after --pool-idle-timeout-ms. Per worker,
// so no lock.

#include <map>
#include <string>
#include <vector>

namespace ferry::agent {

struct WorkerContext;
class PooledClient;

class HbonePool {
 public:
  // `spread`: connections per key that concurrent streams spread over (at least 1).
  HbonePool(WorkerContext& ctx, size_t spread) : ctx_(ctx), spread_(spread) {}
  ~HbonePool();
  WorkerContext& context() { return ctx_; }

  // The connection for a new stream of `key`, or null when one is to be opened.
  PooledClient* find(const std::string& key);
  void add(const std::string& key, PooledClient* conn);
  void remove(const std::string& key, PooledClient* conn);
  size_t size() const;

 private:
  WorkerContext& ctx_;
  size_t spread_;
  std::map<std::string, std::vector<PooledClient*>> conns_;
};

}  // namespace ferry::agent
