// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The benchmark's HTTP/1.1 origin: answers every request with 200 and a fixed body, keeps
// connections alive unless the request says "Connection: close". Epoll, one listener per
// thread with SO_REUSEPORT, so it is never the bottleneck a Python server would be.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::loadgen {

struct ServerOptions {
  std::string address = "0.0.0.0";  // numeric; "::" for IPv6 (dual-stack)
  uint16_t port = 0;                // 0: pick one (tests)
  size_t body_bytes = 1024;
  int threads = 1;
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> start(const ServerOptions& options);
  ~Server();  // stops and joins
  uint16_t port() const { return port_; }
  uint64_t requests() const { return requests_.load(); }
  uint64_t connections() const { return connections_.load(); }

 private:
  Server() = default;
  void serve(int listener);

  uint16_t port_ = 0;
  std::string response_;        // keep-alive response
  std::string close_response_;  // with "Connection: close"
  int stop_fd_ = -1;
  std::vector<int> listeners_;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> connections_{0};
};

}  // namespace ferry::loadgen
