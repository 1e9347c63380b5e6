// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Pooled outbound HBONE connections of one worker, keyed by (source pod, destination pod IP).
// Placeholder until userspace/hbone lands: tunnels are refused with a log line and a counter.

namespace ferry::agent {

struct WorkerContext;

class HbonePool {
 public:
  explicit HbonePool(WorkerContext& ctx) : ctx_(ctx) {}
  WorkerContext& context() { return ctx_; }

 private:
  WorkerContext& ctx_;
};

}  // namespace ferry::agent
