// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The agent side of the enrollment socket. Enrollment is rare control traffic (one request per
// pod event), so the server runs on its own small poll() thread and never touches the data-plane
// workers; the handler it calls must be thread-safe.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "enroll/protocol.h"

namespace ferry::enroll {

class Handler {
 public:
  virtual ~Handler() = default;
  // Called on the server thread, one request at a time.
  virtual Reply handle(const Request& request) = 0;
};

class Server {
 public:
  // Binds `socket_path` (mode 0600, parent directories created). A stale socket file left by a
  // dead agent is replaced; a live agent already listening there is an error.
  // `inherited_fd` >= 0: a listening socket already bound there, handed over by the agent that
  // served it before (agent/drain/handover.h); used as it is.
  static absl::StatusOr<std::unique_ptr<Server>> start(const std::string& socket_path,
                                                       Handler& handler, int inherited_fd = -1);
  ~Server();  // stops the thread, closes connections, unlinks the socket file
  // Stops serving and gives up the listening socket (to hand it over): the caller owns it, and
  // the socket file stays for whoever serves it next.
  int release();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  const std::string& path() const { return path_; }
  uint64_t requestsServed() const { return served_.load(std::memory_order_relaxed); }
  uint64_t requestsMalformed() const { return malformed_.load(std::memory_order_relaxed); }

  // Maximum simultaneous client connections; further ones are accepted and closed at once.
  static constexpr int kMaxClients = 64;

 private:
  Server(std::string path, Handler& handler, int listen_fd, int stop_fd);
  void run();

  std::string path_;
  Handler& handler_;
  int listen_fd_;
  int stop_fd_;
  std::atomic<uint64_t> served_{0};
  std::atomic<uint64_t> malformed_{0};
  std::thread thread_;
};

}  // namespace ferry::enroll
