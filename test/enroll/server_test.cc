// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "enroll/server.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "enroll/client.h"

namespace ferry::enroll {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ferry-enroll-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A handler that keeps pods in a map, as the agent's would.
class MapHandler : public Handler {
 public:
  Reply handle(const Request& r) override {
    std::lock_guard lock(mu_);
    switch (r.op) {
      case Op::kAdd:
        pods_[r.pod.uid] = r.pod;
        return Reply::success();
      case Op::kDel:
        pods_.erase(r.uid);
        return Reply::success();
      case Op::kCheck:
        return pods_.count(r.uid) ? Reply::success() : Reply::failure("unknown pod uid " + r.uid);
    }
    return Reply::failure("unreachable");
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return pods_.size();
  }

 private:
  std::mutex mu_;
  std::map<std::string, PodInfo> pods_;
};

TEST_CASE("client and server speak the protocol", "[enroll]") {
  TempDir dir;
  MapHandler handler;
  auto server = Server::start(dir.file("sub/agent.sock"), handler);
  REQUIRE(server.ok());
  const std::string path = (*server)->path();
  CHECK((std::filesystem::status(path).permissions() & std::filesystem::perms::others_all) ==
        std::filesystem::perms::none);

  PodInfo pod{"uid-1", "n1p1", "default", "sa", "/run/netns/x", {"10.244.1.11"}};
  REQUIRE(addPod(path, pod).ok());
  CHECK(handler.size() == 1);
  CHECK(checkPod(path, "uid-1").ok());
  auto missing = checkPod(path, "uid-2");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(std::string(missing.message()), Catch::Contains("unknown pod uid uid-2"));
  REQUIRE(delPod(path, "uid-1").ok());
  CHECK(handler.size() == 0);
  CHECK_FALSE(checkPod(path, "uid-1").ok());
}

TEST_CASE("server answers malformed lines and pipelined requests", "[enroll]") {
  TempDir dir;
  MapHandler handler;
  auto server = Server::start(dir.file("agent.sock"), handler);
  REQUIRE(server.ok());
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, (*server)->path().c_str());
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  std::string lines = "garbage\n{\"op\":\"check\",\"uid\":\"a\"}\n";
  REQUIRE(::send(fd, lines.data(), lines.size(), 0) == static_cast<ssize_t>(lines.size()));
  std::string got;
  char buf[512];
  while (std::count(got.begin(), got.end(), '\n') < 2) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    REQUIRE(n > 0);
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  CHECK_THAT(got, Catch::StartsWith(R"({"error":"request is not valid JSON","ok":false})"));
  CHECK_THAT(got, Catch::Contains("unknown pod uid a"));
  CHECK((*server)->requestsMalformed() == 1);
  CHECK((*server)->requestsServed() == 2);
}

TEST_CASE("a second server on a live socket is refused and a stale socket is replaced",
          "[enroll]") {
  TempDir dir;
  MapHandler handler;
  const std::string path = dir.file("agent.sock");
  {
    auto first = Server::start(path, handler);
    REQUIRE(first.ok());
    auto second = Server::start(path, handler);
    REQUIRE_FALSE(second.ok());
    CHECK_THAT(std::string(second.status().message()), Catch::Contains("another agent"));
  }
  // A stale socket file left behind by a crashed agent (bound, never listened on).
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  ::close(fd);
  auto again = Server::start(path, handler);
  REQUIRE(again.ok());
  CHECK(checkPod(path, "x").code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("client reports a missing agent clearly", "[enroll]") {
  TempDir dir;
  auto s = checkPod(dir.file("none.sock"), "u");
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(s.message()), Catch::Contains("cannot reach the ferry agent"));
}

}  // namespace
}  // namespace ferry::enroll
