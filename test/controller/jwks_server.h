// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A local HTTP server for jwksUri tests (controller unit tests and e2e): on 127.0.0.1, port 0,
// one answer at a time set by the test.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <string>
#include <thread>

#include "agent/loopback_listener.h"

namespace ferry::controller::testing {

// One answer at a time, set by the test: status and body, or silence (never answers).
class JwksServer {
 public:
  JwksServer() {
    fd_ = ::ferry::agent::testing::loopbackListener(&port_);
    thread_ = std::thread([this] { serve(); });
  }
  ~JwksServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string uri() const { return "http://127.0.0.1:" + std::to_string(port_) + "/jwks.json"; }
  void answer(int status, std::string body, bool silent = false) {
    std::lock_guard lock(mu_);
    status_ = status;
    body_ = std::move(body);
    silent_ = silent;
  }
  int requests() const { return requests_.load(); }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) {
        continue;
      }
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        continue;
      }
      char buf[4096];
      (void)!::read(c, buf, sizeof(buf));  // the request head fits one read from libcurl
      ++requests_;
      std::string reply;
      bool silent;
      {
        std::lock_guard lock(mu_);
        silent = silent_;
        reply = "HTTP/1.1 " + std::to_string(status_) +
                " X\r\ncontent-length: " + std::to_string(body_.size()) +
                "\r\nconnection: close\r\n\r\n" + body_;
      }
      if (silent) {
        // Hold the connection until the client gives up (its timeout) or the test ends.
        pollfd w{c, POLLIN, 0};
        while (!stop_ && ::poll(&w, 1, 20) == 0) {
        }
      } else {
        (void)!::write(c, reply.data(), reply.size());
      }
      ::close(c);
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  int status_ = 200;
  std::string body_;
  bool silent_ = false;
  std::thread thread_;
};

}  // namespace ferry::controller::testing
