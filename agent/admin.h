// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The admin endpoint (127.0.0.1:15000 by default): a tiny HTTP/1.0 server on its own thread for
// operators and tests. GET /stats (counters as JSON), /pods, /ready. Never on the data path.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace ferry::agent {

class AdminServer {
 public:
  // path -> handler returning (status code, content type, body).
  struct Response {
    int code = 200;
    std::string content_type = "application/json";
    std::string body;
  };
  using Route = std::function<Response()>;

  static absl::StatusOr<std::unique_ptr<AdminServer>> start(const std::string& address,
                                                            uint16_t port,
                                                            std::map<std::string, Route> routes);
  ~AdminServer();
  uint16_t port() const { return port_; }

 private:
  AdminServer(int fd, int stop_fd, uint16_t port, std::map<std::string, Route> routes);
  void run();
  void serve(int client);

  int fd_;
  int stop_fd_;
  uint16_t port_;
  std::map<std::string, Route> routes_;
  std::thread thread_;
};

}  // namespace ferry::agent
