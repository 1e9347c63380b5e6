// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// jwksUri fetching by the controller (issue 21 point 2) against a local HTTP server: bounded in
// size and time, checked, pushed with the node state; a failure keeps the last good keys and is
// counted; a new key set (rotation) reaches the node state.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "controller/jwks_fetcher.h"
#include "controller/view_testing.h"
#include "k8s/decode.h"

namespace ferry::controller {
namespace {

using testing::waitUntil;

constexpr const char* kJwksA =
    R"({"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"Ao2uBGXVS8ON8B1YIWPw1_fa2vURCct-9bAxrhX2vBQ","y":"961uxCElY6dubpnDHoSjqZG8hwua6O9U5gveRpLPcgM"}]})";
constexpr const char* kJwksB =
    R"({"keys":[{"kty":"EC","crv":"P-256","kid":"b","x":"Ao2uBGXVS8ON8B1YIWPw1_fa2vURCct-9bAxrhX2vBQ","y":"961uxCElY6dubpnDHoSjqZG8hwua6O9U5gveRpLPcgM"}]})";

// One answer at a time, set by the test: status and body, or silence (never answers).
class JwksServer {
 public:
  JwksServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
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

TEST_CASE("fetchJwks: bounded, checked answers", "[controller][jwt]") {
  JwksServer server;
  JwksFetcherOptions options;
  options.timeout = std::chrono::milliseconds(300);
  options.max_bytes = 4096;

  server.answer(200, kJwksA);
  auto ok = fetchJwks(server.uri(), options);
  REQUIRE(ok.ok());
  CHECK(*ok == kJwksA);

  server.answer(500, kJwksA);
  CHECK_THAT(std::string(fetchJwks(server.uri(), options).status().message()),
             Catch::Contains("HTTP status 500"));

  server.answer(200, std::string(5000, ' '));
  CHECK(fetchJwks(server.uri(), options).status().code() == absl::StatusCode::kResourceExhausted);

  server.answer(200, R"({"keys":[{"kty":"oct","k":"AA"}]})");
  CHECK_THAT(std::string(fetchJwks(server.uri(), options).status().message()),
             Catch::Contains("no RSA or EC"));

  server.answer(200, kJwksA, /*silent=*/true);
  auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(fetchJwks(server.uri(), options).ok());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));

  CHECK_FALSE(fetchJwks("file:///etc/hostname", options).ok());
}

std::string manifests(const std::string& uri) {
  return "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo, labels: {ferry.dev/mesh: "
         "enabled}}\n---\n"
         "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: demo, uid: u1, labels: "
         "{app: web}}\nspec: {nodeName: n1, serviceAccountName: web}\nstatus: {podIP: "
         "10.244.1.10}\n---\n"
         "apiVersion: security.ferry.dev/v1alpha1\nkind: RequestAuthentication\n"
         "metadata: {name: jwt, namespace: demo}\nspec:\n  jwtRules:\n  - issuer: iss\n"
         "    jwksUri: " +
         uri + "\n";
}

const model::JwtRule* ruleIn(const model::NodeSnapshot& s) {
  return s.request_authentications.size() == 1 && s.request_authentications[0].jwt_rules.size() == 1
             ? &s.request_authentications[0].jwt_rules[0]
             : nullptr;
}

TEST_CASE("JwksFetcher: keys reach the node state, a failure keeps them, rotation",
          "[controller][jwt]") {
  JwksServer server;
  server.answer(503, "");
  StateStore store;
  for (const auto& doc : k8s::decodeDocuments(manifests(server.uri()), "test")) {
    INFO((doc.decoded.ok() ? "" : std::string(doc.decoded.status().message())));
    REQUIRE(doc.decoded.ok());
    store.upsert(*doc.decoded);
  }
  JwksFetcherOptions options;
  options.refresh = std::chrono::milliseconds(50);
  options.retry = std::chrono::milliseconds(50);
  options.timeout = std::chrono::milliseconds(500);
  JwksFetcher fetcher(store, options);

  // Before any fetch the rule says so; after a failed one it carries that error (its tokens are
  // refused).
  CHECK_FALSE(ruleIn(store.snapshotFor("n1"))->jwks_error.empty());
  REQUIRE(waitUntil([&] {
    const model::NodeSnapshot s = store.snapshotFor("n1");
    return ruleIn(s) && ruleIn(s)->jwks_error.find("HTTP status 503") != std::string::npos;
  }));
  CHECK(fetcher.failed() >= 1);
  CHECK(ruleIn(store.snapshotFor("n1"))->jwks.empty());

  server.answer(200, kJwksA);
  REQUIRE(waitUntil([&] { return ruleIn(store.snapshotFor("n1"))->jwks == kJwksA; }));
  CHECK(ruleIn(store.snapshotFor("n1"))->jwks_error.empty());

  // The server fails: failures are counted, the last good keys stay.
  const uint64_t failed_before = fetcher.failed();
  server.answer(500, "");
  REQUIRE(waitUntil([&] { return fetcher.failed() >= failed_before + 2; }));
  CHECK(ruleIn(store.snapshotFor("n1"))->jwks == kJwksA);
  CHECK(ruleIn(store.snapshotFor("n1"))->jwks_error.empty());

  // Rotation: a new key set is picked up at the next refresh, with a new store version.
  const uint64_t version = store.version();
  server.answer(200, kJwksB);
  REQUIRE(waitUntil([&] { return ruleIn(store.snapshotFor("n1"))->jwks == kJwksB; }));
  CHECK(store.version() > version);
}

}  // namespace
}  // namespace ferry::controller
