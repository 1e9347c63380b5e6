// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Pooled outbound HBONE connections of one worker, keyed by (source pod, destination pod IP):
// the connection is dialled from inside the source pod's namespace (so it carries the pod's
// IP) with the source pod's certificate, and pins the destination workload's identity. A new
// stream reuses any connection of its key that still accepts streams (under the peer's
// concurrent-stream limit, no GOAWAY); otherwise a new connection is opened. Connections with
// no streams close after --pool-idle-timeout-ms. Per worker, so no lock: with N workers a
// (source, destination) pair costs at most N handshakes while connections stay warm.

#include <map>
#include <string>
#include <vector>

namespace ferry::agent {

struct WorkerContext;
class PooledClient;

class HbonePool {
 public:
  explicit HbonePool(WorkerContext& ctx) : ctx_(ctx) {}
  ~HbonePool();
  WorkerContext& context() { return ctx_; }

  // An existing connection for `key` that accepts a new stream, or null.
  PooledClient* find(const std::string& key);
  void add(const std::string& key, PooledClient* conn);
  void remove(const std::string& key, PooledClient* conn);
  size_t size() const;

 private:
  WorkerContext& ctx_;
  std::map<std::string, std::vector<PooledClient*>> conns_;
};

}  // namespace ferry::agent
