// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A tiny HTTP/1.0 server on its own thread for operators, probes and tests, never on the data
// path. The agent runs two: the admin API (127.0.0.1:15000: /stats, /config_dump, /logging,
// /pods, /ready) and the readiness probe (:15021/healthz/ready). One request per connection,
// served in turn: admin traffic is rare and tiny.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "agent/io/overload.h"

namespace ferry::agent {

class AdminServer {
 public:
  struct Request {
    std::string method;                        // "GET", "POST"
    std::string path;                          // without the query
    std::map<std::string, std::string> query;  // "?a=1&b" -> {a: 1, b: ""}, not %-decoded
  };
  struct Response {
    int code = 200;
    std::string content_type = "application/json";
    std::string body;
  };
  // path -> handler. A handler that takes no Request answers GET and HEAD only.
  using Route = std::function<Response(const Request&)>;
  static Route getOnly(std::function<Response()> fn);

  // `inherited_fd` >= 0: a listening socket handed over by the previous agent
  // (agent/drain/handover.h), used when it is bound to address:port (else closed, and a new one
  // bound).
  static absl::StatusOr<std::unique_ptr<AdminServer>> start(const std::string& address,
                                                            uint16_t port,
                                                            std::map<std::string, Route> routes,
                                                            int inherited_fd = -1);
  ~AdminServer();
  uint16_t port() const { return port_; }
  int fd() const { return fd_; }  // to hand over; stays this server's

 private:
  AdminServer(int fd, int stop_fd, uint16_t port, std::map<std::string, Route> routes);
  void run();
  void serve(int client);

  int fd_;
  int stop_fd_;
  uint16_t port_;
  std::map<std::string, Route> routes_;
  FdReserve reserve_;  // accepts with it when the process is out of descriptors (overload.h)
  std::thread thread_;
};

}  // namespace ferry::agent
