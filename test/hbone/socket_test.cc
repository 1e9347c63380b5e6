// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// HBONE over real loopback sockets: our client against our server, and a Python h2 client
// (a stack we did not write) against our server.

#include <arpa/inet.h>
#include <poll.h>
#include <sys/wait.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "pair.h"
#include "socket_driver.h"

namespace ferry::hbone::testing {
namespace {

// A listening socket on 127.0.0.1, port chosen by the kernel.
int listenLoopback(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  *port = ntohs(addr.sin_port);
  return fd;
}

// The app side of the server in this test: echoes every accepted stream, then half-closes.
class EchoApp {
 public:
  void onEvents(HboneConnection& conn, const std::vector<HboneEvent>& events) {
    for (const HboneEvent& e : events) {
      if (e.type == HboneEventType::kReadable || e.type == HboneEventType::kWritable) {
        pump(conn, e.stream);
      } else if (e.type == HboneEventType::kClosed) {
        pending_.erase(e.stream);
      }
    }
    for (auto& [id, state] : pending_) {
      pump(conn, id);
    }
  }

 private:
  struct State {
    std::string backlog;
    bool eof = false;
    bool shut = false;
  };
  void pump(HboneConnection& conn, StreamId id) {
    State& st = pending_[id];
    uint8_t buf[16384];
    while (!st.eof && st.backlog.size() < 256 * 1024) {
      ReadResult r = conn.read(id, absl::MakeSpan(buf));
      st.backlog.append(reinterpret_cast<char*>(buf), r.bytes);
      st.eof = r.eof;
      if (r.bytes == 0) {
        break;
      }
    }
    size_t n = conn.write(id, bytes(st.backlog));
    st.backlog.erase(0, n);
    if (st.eof && st.backlog.empty() && !st.shut) {
      conn.shutdownWrite(id);
      st.shut = true;
    }
  }
  std::map<StreamId, State> pending_;
};

// Serves HBONE connections on `listen_fd` until `stop`, echoing streams.
void serveEcho(int listen_fd, std::shared_ptr<const tls::TlsContext> ctx, AcceptCallback accept,
               std::atomic<bool>* stop, std::vector<std::string>* errors) {
  struct Conn {
    int fd;
    std::unique_ptr<HboneServer> server;
    EchoApp app;
  };
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<HboneEvent> events;
  while (!stop->load()) {
    std::vector<pollfd> fds = {{listen_fd, POLLIN, 0}};
    for (auto& c : conns) {
      fds.push_back(
          {c->fd, static_cast<short>(POLLIN | (c->server->networkOut().empty() ? 0 : POLLOUT)), 0});
    }
    ::poll(fds.data(), fds.size(), 50);
    if (fds[0].revents & POLLIN) {
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        setNonBlocking(fd);
        auto server = HboneServer::create(ctx, accept);
        if (server.ok()) {
          conns.push_back(std::make_unique<Conn>(Conn{fd, std::move(*server), {}}));
        }
      }
    }
    for (auto it = conns.begin(); it != conns.end();) {
      Conn& c = **it;
      absl::Status status;
      bool alive = pumpSocket(c.fd, *c.server, &status);
      c.server->takeEvents(events);
      c.app.onEvents(*c.server, events);
      alive = pumpSocket(c.fd, *c.server, &status) && alive;
      if (!status.ok()) {
        errors->push_back(std::string(status.message()));
      }
      if (!alive) {
        ::close(c.fd);
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : conns) {
    ::close(c->fd);
  }
}

TEST_CASE("our client and server over a loopback TCP socket") {
  fakes::FakeCa ca;
  uint16_t port = 0;
  int listen_fd = listenLoopback(&port);
  std::atomic<bool> stop{false};
  std::vector<std::string> server_errors;
  std::thread server_thread(
      serveEcho, listen_fd, contextFor(ca.issue("shop", "db"), ca.bundle()),
      [](const StreamRequest&) { return 200; }, &stop, &server_errors);

  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  setNonBlocking(fd);
  auto client = HboneClient::create(contextFor(ca.issue("shop", "cart"), ca.bundle()),
                                    tls::SpiffeId{"cluster.local", "shop", "db"});
  REQUIRE(client.ok());
  HboneClient& c = **client;

  std::string payload(3u << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i) {
    payload[i] = static_cast<char>((i * 2654435761u) >> 13);
  }
  std::vector<StreamId> ids;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<StreamId> id = c.openStream(*Authority::parse("127.0.0.1:7"));
    REQUIRE(id.ok());
    ids.push_back(*id);
  }
  std::map<StreamId, size_t> sent;
  std::map<StreamId, std::string> echoed;
  std::map<StreamId, bool> done;
  absl::Status status;
  std::vector<HboneEvent> events;
  for (int round = 0; round < 200000 && done.size() < ids.size(); ++round) {
    pollfd pfd{fd, static_cast<short>(POLLIN | (c.networkOut().empty() ? 0 : POLLOUT)), 0};
    ::poll(&pfd, 1, 50);
    REQUIRE(pumpSocket(fd, c, &status));
    for (StreamId id : ids) {
      if (sent[id] < payload.size()) {
        sent[id] += c.write(id, bytes(payload).subspan(sent[id]));
        if (sent[id] == payload.size()) {
          c.shutdownWrite(id);
        }
      }
      uint8_t buf[16384];
      while (!done.contains(id)) {
        ReadResult r = c.read(id, absl::MakeSpan(buf));
        echoed[id].append(reinterpret_cast<char*>(buf), r.bytes);
        if (r.eof) {
          done[id] = true;
        }
        if (r.bytes == 0) {
          break;
        }
      }
    }
    c.takeEvents(events);
    REQUIRE(pumpSocket(fd, c, &status));
  }
  CHECK(status.ok());
  REQUIRE(done.size() == ids.size());
  for (StreamId id : ids) {
    CHECK(echoed[id] == payload);
  }
  ::close(fd);
  stop = true;
  server_thread.join();
  ::close(listen_fd);
  CHECK(server_errors.empty());
}

struct ProcessResult {
  int exit_code = -1;
  std::string output;
};

ProcessResult run(const std::string& command) {
  ProcessResult r;
  FILE* f = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(f != nullptr);
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
    r.output.append(buf, n);
  }
  int status = ::pclose(f);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST_CASE("a Python h2 client (python3-h2 + ssl) opens CONNECT streams against our server") {
  fakes::FakeCa ca;
  char dir_template[] = "/tmp/ferry-hbone-py-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  fakes::IssuedCert py = ca.issue("py", "client");
  REQUIRE(tls::writePemFile(dir + "/py-cert.pem", py.cert_pem).ok());
  REQUIRE(tls::writePemFile(dir + "/py-key.pem", py.key_pem).ok());
  REQUIRE(tls::writePemFile(dir + "/ca.pem", ca.rootPem()).ok());
  fakes::FakeCa stranger;
  fakes::IssuedCert foreign = stranger.issue("py", "client");
  REQUIRE(tls::writePemFile(dir + "/foreign-cert.pem", foreign.cert_pem).ok());
  REQUIRE(tls::writePemFile(dir + "/foreign-key.pem", foreign.key_pem).ok());

  uint16_t port = 0;
  int listen_fd = listenLoopback(&port);
  std::atomic<bool> stop{false};
  std::vector<std::string> server_errors;
  std::vector<std::string> accepted_peers;
  std::mutex mu;
  std::thread server_thread(
      serveEcho, listen_fd, contextFor(ca.issue("shop", "db"), ca.bundle()),
      [&](const StreamRequest& req) {
        std::lock_guard<std::mutex> lock(mu);
        accepted_peers.push_back(req.peer.uri() + " -> " + req.authority.toString());
        return req.authority.port == 22 ? 403 : 200;
      },
      &stop, &server_errors);

  auto client = [&](const std::string& cert, const std::string& extra) {
    // StrCat, not a chain of +: GCC 12 at -O2 reports a false -Warray-bounds on the chain.
    return run(absl::StrCat(FERRY_PYTHON, " ", FERRY_H2_CLIENT, " --port ", port, " --cert ", dir,
                            "/", cert, "-cert.pem --key ", dir, "/", cert, "-key.pem --ca ", dir,
                            "/ca.pem ", extra));
  };
  ProcessResult echo = client("py", "--authority 10.244.2.11:8080 --mode echo");
  INFO(echo.output);
  CHECK(echo.exit_code == 0);
  CHECK_THAT(echo.output, Catch::Contains("server identity: spiffe://cluster.local/ns/shop/sa/db"));
  CHECK_THAT(echo.output, Catch::Contains("TLSv1.3 TLS_AES_128_GCM_SHA256"));
  CHECK_THAT(echo.output, Catch::Contains("OK"));

  ProcessResult denied =
      client("py", "--authority 10.244.2.11:22 --mode expect-status --status 403");
  INFO(denied.output);
  CHECK(denied.exit_code == 0);

  ProcessResult bad_authority =
      client("py", "--authority backend.shop:80 --mode expect-status --status 400");
  INFO(bad_authority.output);
  CHECK(bad_authority.exit_code == 0);

  ProcessResult get =
      client("py", "--authority 10.244.2.11:80 --method GET --mode expect-status --status 405");
  INFO(get.output);
  CHECK(get.exit_code == 0);

  ProcessResult refused = client("foreign", "--authority 10.244.2.11:8080 --mode echo");
  INFO(refused.output);
  CHECK(refused.exit_code != 0);

  stop = true;
  server_thread.join();
  ::close(listen_fd);
  {
    std::lock_guard<std::mutex> lock(mu);
    CHECK(accepted_peers ==
          std::vector<std::string>{"spiffe://cluster.local/ns/py/sa/client -> 10.244.2.11:8080",
                                   "spiffe://cluster.local/ns/py/sa/client -> 10.244.2.11:22"});
  }
  // Exactly one refused handshake, for the certificate of the other CA.
  REQUIRE(server_errors.size() == 1);
  CHECK_THAT(server_errors[0], Catch::Contains("not signed by a trusted root"));
  for (const char* f :
       {"py-cert.pem", "py-key.pem", "ca.pem", "foreign-cert.pem", "foreign-key.pem"}) {
    ::unlink((dir + "/" + f).c_str());
  }
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace ferry::hbone::testing
