// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Where the controller learns the cluster from. Two implementations feed the same store:
// KubeSource (list/watch against the API server) and StandaloneSource (a folder of the same
// manifests, reloaded when a file changes).

#include <chrono>
#include <string>

#include "absl/status/status.h"

namespace ferry::controller {

class Source {
 public:
  virtual ~Source() = default;
  // Starts feeding the store; returns once the work is under way (or failed to start).
  virtual absl::Status start() = 0;
  // True once the initial state of every kind has been applied.
  virtual bool waitForSync(std::chrono::milliseconds timeout) = 0;
  virtual void stop() = 0;
  // For logs: "kubernetes https://10.96.0.1:443", "manifests /etc/ferry".
  virtual std::string describe() const = 0;
};

}  // namespace ferry::controller
