// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Capture end to end in the local-cluster harness: real processes (python3) in real pods,
// the capture attached to node 1, and this test process standing in for node 1's agent (it
// joins the node's agent cgroup and opens its listeners inside n1p1 with socketInNetns).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bpf/capture.h"
#include "capture_env.h"
#include "eventually.h"
#include "harness/cluster.h"
#include "net/netns.h"
#include "net/socket_address.h"
#include "privileged.h"
#include "status_testing.h"

// REQUIRE_OK binds a reference to its argument's status; a temporary argument would dangle
// (GCC's -Wdangling-pointer says so), so results are held in a local first.
#define REQUIRE_OK_HELD(expr) \
  do {                        \
    auto e2e_held_ = (expr);  \
    REQUIRE_OK(e2e_held_);    \
  } while (0)

namespace ferry::bpf::testing {
namespace {

using ferry::testing::eventually;
using harness::Cluster;
using namespace std::chrono_literals;
using harness::Pod;

// Connects, sends n pattern bytes (byte i = i % 251), half-closes, reads to EOF and checks it
// got the same pattern back. Prints "ok <local address>" or a reason; exit 0 only when intact.
// With a 4th argument it retries recv() on EAGAIN and reports how often (the spliced case,
// see BpfConfig.splice).
constexpr char kClient[] = R"PY(
import socket, sys
dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tolerate = len(sys.argv) > 4
eagain = 0
data = (bytes(range(251)) * (n // 251 + 1))[:n]
s = socket.socket(socket.AF_INET6 if ':' in dst else socket.AF_INET, socket.SOCK_STREAM)
try:
    s.connect((dst, port))
except OSError as e:
    print("connect failed errno", e.errno); sys.exit(3)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
got = bytearray()
while True:
    try:
        b = s.recv(1 << 20)
    except BlockingIOError:
        if not tolerate:
            raise
        eagain += 1
        continue
    if not b:
        break
    got += b
if bytes(got) != data:
    print("mismatch", len(got), "of", n); sys.exit(4)
print("ok", s.getsockname()[0], "eagain", eagain)
)PY";

// A plain server for uncaptured destinations: answers each connection with its own name.
constexpr char kServer[] = R"PY(
import socket, sys
name, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", port)); s.listen(16)
print("listening", flush=True)
while True:
    c, peer = s.accept()
    print("accepted", peer[0], flush=True)
    c.sendall(name.encode()); c.close()
)PY";

constexpr char kProbe[] = R"PY(
import socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, socket.SOCK_STREAM)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except OSError as e:
    print("connect failed errno", e.errno); sys.exit(3)
print(s.recv(100).decode())
)PY";

bool expectPattern(int fd, size_t n, bool retry_eagain) {
  std::vector<uint8_t> buf(1 << 20);
  size_t at = 0;
  while (true) {
    ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
    if (r < 0 && (errno == EINTR || (retry_eagain && errno == EAGAIN))) {
      continue;
    }
    if (r <= 0) {
      return r == 0 && at == n;
    }
    for (ssize_t i = 0; i < r; ++i, ++at) {
      if (buf[i] != at % 251) {
        return false;
      }
    }
  }
}

bool sendPattern(int fd, size_t n) {
  std::vector<uint8_t> buf(1 << 20);
  size_t at = 0;
  while (at < n) {
    size_t chunk = std::min(buf.size(), n - at);
    for (size_t i = 0; i < chunk; ++i) {
      buf[i] = (at + i) % 251;
    }
    size_t off = 0;
    while (off < chunk) {
      ssize_t w = ::send(fd, buf.data() + off, chunk - off, MSG_NOSIGNAL);
      if (w <= 0) {
        return false;
      }
      off += w;
    }
    at += chunk;
  }
  return true;
}

struct Accepted {
  bool ok = false;  // pattern in, EOF, pattern out
  std::string original;
  std::string peer;
};

// The agent's side of one connection: accept, read the original destination, check the
// pattern up to the app's half-close, answer with the pattern, close.
Accepted serveOne(Capture& capture, int listener, size_t n, bool retry_eagain = false,
                  std::chrono::milliseconds answer_after = {}) {
  Accepted out;
  UniqueFd conn = acceptWithin(listener, 10000);
  if (!conn.valid()) {
    return out;
  }
  absl::StatusOr<OriginalDestination> orig = capture.originalDestination(conn.get());
  out.original = orig.ok() ? orig->toString() : orig.status().ToString();
  sockaddr_storage peer{};
  socklen_t len = sizeof(peer);
  ::getpeername(conn.get(), reinterpret_cast<sockaddr*>(&peer), &len);
  out.peer = net::SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&peer), len).ip();
  const bool got = expectPattern(conn.get(), n, retry_eagain);
  // The stimulus of the kernel canary below (a slow answer), not a synchronization.
  std::this_thread::sleep_for(answer_after);
  out.ok = got && sendPattern(conn.get(), n) && ::shutdown(conn.get(), SHUT_WR) == 0;
  return out;
}

UniqueFd agentListener(const Pod& pod, uint16_t port) {
  absl::StatusOr<int> fd = net::socketInNetns(pod.netns_path, AF_INET6, SOCK_STREAM);
  REQUIRE_OK(fd);
  UniqueFd sock(*fd);
  int one = 1;
  ::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_any;
  sa.sin6_port = htons(port);
  REQUIRE(::bind(sock.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  REQUIRE(::listen(sock.get(), 64) == 0);
  return sock;
}

bool idle(int listener) {
  pollfd p{listener, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

struct Fixture {
  std::unique_ptr<Cluster> cluster;
  std::unique_ptr<AgentCgroup> agent;
  std::unique_ptr<Capture> capture;

  explicit Fixture(bool splice = false) {
    auto created = Cluster::create({.nodes = 2, .pods_per_node = 2});
    REQUIRE_OK(created);
    cluster = std::move(*created);
    const harness::Node& node = cluster->node(1);
    agent = std::make_unique<AgentCgroup>(node.agent_cgroup_path);
    BpfConfig config;
    config.pin_dir = node.bpffs_dir;
    config.pod_cgroup = node.cgroup_path;
    config.agent_cgroup = node.agent_cgroup_path;
    config.splice = splice;
    auto started = Capture::start(config);
    REQUIRE_OK(started);
    capture = std::move(*started);
    REQUIRE_OK_HELD(capture->setMeshCidrs({harness::kPodCidrV4, harness::kPodCidrV6},
                                          {harness::kServiceCidrV4, harness::kServiceCidrV6}));
  }
  ~Fixture() {
    if (capture) {
      capture->detachAll().IgnoreError();
      capture.reset();
    }
    agent.reset();  // leave the agent cgroup before the cluster removes it
  }
  absl::StatusOr<PodHandle> enroll(const Pod& pod, bool opt_out = false) {
    return capture->enrollPod({pod.netns_path, pod.ipv4, pod.ipv6, opt_out});
  }
  harness::ProcessResult client(const Pod& from, const std::string& dst, uint16_t port, size_t n,
                                bool tolerate_eagain = false) {
    std::vector<std::string> argv = {"python3",        "-c", kClient, dst, std::to_string(port),
                                     std::to_string(n)};
    if (tolerate_eagain) {
      argv.push_back("tolerate-eagain");
    }
    auto r = cluster->run(from, argv, absl::Seconds(60));
    REQUIRE_OK(r);
    return *r;
  }
};

TEST_CASE("e2e: a pod's connects to a remote pod and to service VIPs reach the agent intact",
          "[bpf][e2e][privileged]") {
  FERRY_REQUIRE_ROOT();
  Fixture f;
  const Pod& app = f.cluster->pod(1, 1);
  // n1p2 first, so n1p1's index is not 0: the source pod in the record is really n1p1's.
  auto neighbour = f.enroll(f.cluster->pod(1, 2));
  REQUIRE_OK(neighbour);
  auto handle = f.enroll(app);
  REQUIRE_OK(handle);
  REQUIRE(handle->index != neighbour->index);
  UniqueFd outbound = agentListener(app, FERRY_PORT_OUTBOUND);
  std::string from_pod = absl::StrCat(" from pod ", handle->index);

  struct Row {
    std::string dst;
    uint16_t port;
    size_t bytes;
    std::string original;
    std::string source;  // the app's address the agent sees
  };
  const std::string v4 = app.ipv4;
  const std::string v6 = app.ipv6;
  const std::vector<Row> rows = {
      {"10.244.2.11", 8080, 1, "10.244.2.11:8080", v4},
      {"fd00:244::2:11", 8080, 1, "[fd00:244::2:11]:8080", v6},
      {"10.96.0.10", 80, 1, "10.96.0.10:80", v4},
      {"fd00:96::a", 80, 1, "[fd00:96::a]:80", v6},
      {"10.96.0.10", 80, 1500, "10.96.0.10:80", v4},
      {"10.96.0.10", 80, 65537, "10.96.0.10:80", v4},
      {"10.96.0.10", 80, 1 << 20, "10.96.0.10:80", v4},
      {"10.244.2.11", 8080, 64u << 20, "10.244.2.11:8080", v4},
  };
  for (const Row& row : rows) {
    INFO(row.dst << ":" << row.port << " with " << row.bytes << " bytes");
    std::future<Accepted> agent = std::async(
        std::launch::async, [&] { return serveOne(*f.capture, outbound.get(), row.bytes); });
    harness::ProcessResult r = f.client(app, row.dst, row.port, row.bytes);
    Accepted seen = agent.get();
    INFO("client: " << r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(seen.ok);
    CHECK(seen.original == row.original + from_pod);
    CHECK(seen.peer == row.source);
  }
  auto counters = f.capture->counters();
  REQUIRE_OK(counters);
  CHECK((*counters)[FERRY_CTR_CONNECT_CAPTURED] == rows.size());
  CHECK((*counters)[FERRY_CTR_ORIG_DST_RECORDED] == rows.size());
  CHECK((*counters)[FERRY_CTR_SPLICED] == 0);  // opt-in, off here
}

TEST_CASE("e2e: with the splice on, bytes move socket to socket and arrive intact",
          "[bpf][e2e][splice][privileged]") {
  FERRY_REQUIRE_ROOT();
  Fixture f(/*splice=*/true);
  const Pod& app = f.cluster->pod(1, 1);
  auto handle = f.enroll(app);
  REQUIRE_OK(handle);
  UniqueFd outbound = agentListener(app, FERRY_PORT_OUTBOUND);
  const std::vector<std::pair<std::string, size_t>> rows = {
      {"10.96.0.10", 1},     {"fd00:96::a", 1},        {"10.244.2.11", 1500},
      {"10.96.0.10", 65537}, {"10.96.0.10", 1u << 20}, {"10.244.2.11", 64u << 20},
  };
  for (const auto& [dst, bytes] : rows) {
    INFO(dst << " with " << bytes << " bytes");
    std::future<Accepted> agent = std::async(std::launch::async, [&, n = bytes] {
      return serveOne(*f.capture, outbound.get(), n, /*retry_eagain=*/true);
    });
    harness::ProcessResult r = f.client(app, dst, 80, bytes, /*tolerate_eagain=*/true);
    Accepted seen = agent.get();
    INFO("client: " << r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(seen.ok);
    CHECK(absl::StartsWith(seen.original,
                           absl::StrContains(dst, ":") ? "[" + dst + "]:80" : dst + ":80"));
  }
  auto counters = f.capture->counters();
  REQUIRE_OK(counters);
  CHECK((*counters)[FERRY_CTR_SPLICED] == 2 * rows.size());  // both ends of every connection
  CHECK((*counters)[FERRY_CTR_SPLICE_MSGS] >= rows.size());
  CHECK(*f.capture->splicedSocketCount() == 0);  // all closed, all gone
}

// Kernel canary for bpf/README.md, "Why it stays off": the app half-closes and blocks in recv();
// the agent answers only after the delayed ACK of the app's FIN (40-200 ms) has arrived. With the
// app's socket in the sockhash, that ACK's FIN_WAIT1 -> FIN_WAIT2 state change wakes the reader
// without data and tcp_bpf_recvmsg returns EAGAIN from the blocking recv() (every time on an
// idle machine); with the splice off the same exchange never does. When a kernel stops doing this,
// this test fails and the splice can be reconsidered.
TEST_CASE("e2e: kernel canary: a half-closed blocking reader in the sockhash gets EAGAIN",
          "[bpf][e2e][splice][privileged]") {
  FERRY_REQUIRE_ROOT();
  for (bool splice : {false, true}) {
    INFO((splice ? "splice on" : "splice off"));
    Fixture f(splice);
    const Pod& app = f.cluster->pod(1, 1);
    REQUIRE_OK_HELD(f.enroll(app));
    UniqueFd outbound = agentListener(app, FERRY_PORT_OUTBOUND);
    constexpr int kConnections = 3;
    int with_eagain = 0;
    for (int i = 0; i < kConnections; ++i) {
      std::future<Accepted> agent = std::async(std::launch::async, [&] {
        return serveOne(*f.capture, outbound.get(), 100, /*retry_eagain=*/true, 600ms);
      });
      harness::ProcessResult r = f.client(app, "10.96.0.10", 80, 100, /*tolerate_eagain=*/true);
      CHECK(agent.get().ok);
      INFO("client: " << r.out << r.err);
      REQUIRE(r.exit_code == 0);  // intact either way: the tolerant client retried
      with_eagain += absl::StrContains(r.out, "eagain 0") ? 0 : 1;
    }
    // Off: never. On: the kernel still does it. Not necessarily every time: on a loaded machine
    // the ACK can arrive before the reader blocks (a full suite saw 2 of 3 once).
    if (splice) {
      CHECK(with_eagain >= 1);
    } else {
      CHECK(with_eagain == 0);
    }
  }
}

TEST_CASE("e2e: exempt connects reach the real destination, never the agent",
          "[bpf][e2e][privileged]") {
  FERRY_REQUIRE_ROOT();
  Fixture f;
  const Pod& app = f.cluster->pod(1, 1);
  const Pod& other = f.cluster->pod(1, 2);
  const Pod& server = f.cluster->pod(2, 1);
  auto srv = f.cluster->spawn(server, {"python3", "-u", "-c", kServer, "n2p1", "9090"});
  REQUIRE_OK(srv);
  UniqueFd outbound_app = agentListener(app, FERRY_PORT_OUTBOUND);
  UniqueFd outbound_other = agentListener(other, FERRY_PORT_OUTBOUND);

  auto probe = [&](const Pod& from, const std::string& dst) {
    harness::ProcessResult last;
    // Refused while the server is still starting: retried (bounded); the caller checks the answer.
    static_cast<void>(eventually(
        [&] {
          auto r = f.cluster->run(from, {"python3", "-c", kProbe, dst, "9090"}, absl::Seconds(10));
          REQUIRE_OK(r);
          last = *r;
          return !absl::StrContains(last.out, "errno 111");
        },
        10s, "a probe to " + dst + " that is not refused", 100ms));
    return last;
  };

  SECTION("unenrolled network namespace") {
    CHECK(absl::StrContains(probe(app, server.ipv4).out, "n2p1"));
  }
  SECTION("opted-out pod") {
    REQUIRE_OK_HELD(f.enroll(other, /*opt_out=*/true));
    CHECK(absl::StrContains(probe(other, server.ipv4).out, "n2p1"));
    CHECK(absl::StrContains(probe(other, server.ipv6).out, "n2p1"));
    CHECK((*f.capture->counters())[FERRY_CTR_CONNECT_OPTED_OUT] >= 2);
  }
  SECTION("excluded outbound port") {
    REQUIRE_OK_HELD(f.enroll(app));
    REQUIRE_OK_HELD(f.capture->setExcludedPorts(PortDirection::kOutbound, {9090}));
    CHECK(absl::StrContains(probe(app, server.ipv4).out, "n2p1"));
    CHECK(absl::StrContains(probe(app, server.ipv6).out, "n2p1"));
    CHECK((*f.capture->counters())[FERRY_CTR_CONNECT_EXCLUDED_PORT] >= 2);
  }
  SECTION("the agent's own socket inside an enrolled pod's namespace") {
    REQUIRE_OK_HELD(f.enroll(app));
    // This process is the agent (node 1's agent cgroup, outside the pod subtree): a socket it
    // opens in n1p1 and connects from there goes to the real destination.
    absl::StatusOr<int> fd = net::socketInNetns(app.netns_path, AF_INET, SOCK_STREAM);
    REQUIRE_OK(fd);
    UniqueFd sock(*fd);
    absl::StatusOr<net::SocketAddress> sa = net::SocketAddress::parse(server.ipv4, 9090);
    REQUIRE_OK(sa);
    // The server may be starting: a refused socket is replaced and tried again (bounded).
    REQUIRE(eventually(
        [&] {
          if (::connect(sock.get(), sa->sa(), sa->len) == 0) {
            return true;
          }
          sock.reset(*net::socketInNetns(app.netns_path, AF_INET, SOCK_STREAM));
          return false;
        },
        5s, "a direct connect to the server", 100ms));
    char name[8] = {};
    CHECK(::recv(sock.get(), name, 4, MSG_WAITALL) == 4);
    CHECK(std::string(name) == "n2p1");
  }
  SECTION("destination CIDR outside the mesh") {
    REQUIRE_OK_HELD(f.enroll(app));
    REQUIRE_OK_HELD(
        f.capture->setMeshCidrs({}, {harness::kServiceCidrV4, harness::kServiceCidrV6}));
    CHECK(absl::StrContains(probe(app, server.ipv4).out, "n2p1"));
    CHECK((*f.capture->counters())[FERRY_CTR_CONNECT_NOT_MESH] >= 1);
  }
  CHECK(idle(outbound_app.get()));
  CHECK(idle(outbound_other.get()));
  CHECK((*f.capture->counters())[FERRY_CTR_CONNECT_CAPTURED] == 0);
}

TEST_CASE("e2e: fail closed, no agent listening means refused, never the real destination",
          "[bpf][e2e][failclosed][privileged]") {
  FERRY_REQUIRE_ROOT();
  Fixture f;
  const Pod& app = f.cluster->pod(1, 1);
  const Pod& server = f.cluster->pod(2, 1);
  auto srv = f.cluster->spawn(server, {"python3", "-u", "-c", kServer, "n2p1", "9090"});
  REQUIRE_OK(srv);
  // The server is up (reached while n1p1 is not enrolled yet) ...
  REQUIRE(eventually(
      [&] {
        auto r = f.cluster->run(app, {"python3", "-c", kProbe, server.ipv4, "9090"});
        REQUIRE_OK(r);
        return absl::StrContains(r->out, "n2p1");
      },
      10s, "the server to answer n1p1 before enrolment", 100ms));
  REQUIRE_OK_HELD(f.enroll(app));
  size_t accepted_before = 0;
  for (absl::string_view line : absl::StrSplit((*srv)->log(), '\n')) {
    accepted_before += absl::StartsWith(line, "accepted") ? 1 : 0;
  }
  // ... and with n1p1 enrolled and no listener on 15001, every captured connect is refused.
  for (const std::string& dst : {server.ipv4, server.ipv6, std::string("10.96.0.10")}) {
    INFO(dst);
    auto r = f.cluster->run(app, {"python3", "-c", kProbe, dst, "9090"});
    REQUIRE_OK(r);
    CHECK(r->exit_code == 3);
    CHECK(absl::StrContains(r->out, "errno 111"));  // ECONNREFUSED
  }
  size_t accepted_after = 0;
  for (absl::string_view line : absl::StrSplit((*srv)->log(), '\n')) {
    accepted_after += absl::StartsWith(line, "accepted") ? 1 : 0;
  }
  CHECK(accepted_after == accepted_before);
  CHECK((*f.capture->counters())[FERRY_CTR_CONNECT_NO_LISTENER] == 3);
}

TEST_CASE("e2e: inbound plaintext is steered to the agent's 15006, HBONE and probes are not",
          "[bpf][e2e][inbound][privileged]") {
  FERRY_REQUIRE_ROOT();
  Fixture f;
  const Pod& target = f.cluster->pod(1, 1);
  const Pod& peer = f.cluster->pod(2, 1);
  auto handle = f.enroll(target);
  REQUIRE_OK(handle);
  REQUIRE_OK_HELD(f.capture->setExcludedPorts(PortDirection::kInbound, {15021}));
  auto app = f.cluster->spawn(target, {"python3", "-u", "-c", kServer, "app", "8080"});
  auto probe_app = f.cluster->spawn(target, {"python3", "-u", "-c", kServer, "probe", "15021"});
  REQUIRE_OK(app);
  REQUIRE_OK(probe_app);

  auto connectFromPeer = [&](const std::string& dst, uint16_t port) {
    auto r = f.cluster->run(peer, {"python3", "-c", kProbe, dst, std::to_string(port)});
    REQUIRE_OK(r);
    return *r;
  };

  SECTION("no inbound listener registered yet: refused, the app is not reached") {
    auto r = connectFromPeer(target.ipv4, 8080);
    CHECK(absl::StrContains(r.out, "errno 111"));
    CHECK((*f.capture->counters())[FERRY_CTR_INBOUND_REFUSED] >= 1);
  }
  SECTION("plaintext to the app's port goes to the agent, which sees the port asked for") {
    UniqueFd inbound = agentListener(target, FERRY_PORT_INBOUND);
    REQUIRE_OK_HELD(f.capture->setInboundListener(handle->index, inbound.get()));
    for (const std::string& dst : {target.ipv4, target.ipv6}) {
      INFO(dst);
      std::future<std::string> agent = std::async(std::launch::async, [&] {
        UniqueFd conn = acceptWithin(inbound.get(), 10000);
        if (!conn.valid()) {
          return std::string("nothing accepted");
        }
        sockaddr_storage local{};
        socklen_t len = sizeof(local);
        ::getsockname(conn.get(), reinterpret_cast<sockaddr*>(&local), &len);
        ::send(conn.get(), "agent", 5, 0);
        return net::SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&local), len).str();
      });
      auto r = connectFromPeer(dst, 8080);
      std::string expect = absl::StrContains(dst, ":") ? "[" + dst + "]:8080" : dst + ":8080";
      CHECK(agent.get() == expect);
      CHECK(absl::StrContains(r.out, "agent"));
    }
    CHECK((*f.capture->counters())[FERRY_CTR_INBOUND_STEERED] == 2);
  }
  SECTION("HBONE 15008 reaches the agent's own listener; an excluded probe port the app") {
    UniqueFd inbound = agentListener(target, FERRY_PORT_INBOUND);
    REQUIRE_OK_HELD(f.capture->setInboundListener(handle->index, inbound.get()));
    UniqueFd hbone = agentListener(target, FERRY_PORT_HBONE);
    std::future<bool> agent = std::async(std::launch::async, [&] {
      UniqueFd conn = acceptWithin(hbone.get(), 10000);
      return conn.valid() && ::send(conn.get(), "hbone", 5, 0) == 5;
    });
    CHECK(absl::StrContains(connectFromPeer(target.ipv4, FERRY_PORT_HBONE).out, "hbone"));
    CHECK(agent.get());
    std::string probed;
    const bool reached = eventually(  // the probe server may be starting
        [&] {
          return absl::StrContains(probed = connectFromPeer(target.ipv4, 15021).out, "probe");
        },
        10s, "the excluded probe port to reach the probe server", 100ms);
    INFO("last answer: " << probed);
    CHECK(reached);
    CHECK(idle(inbound.get()));
    CHECK((*f.capture->counters())[FERRY_CTR_INBOUND_EXCLUDED] >= 1);
  }
}

}  // namespace
}  // namespace ferry::bpf::testing
