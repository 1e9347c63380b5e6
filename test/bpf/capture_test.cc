// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The capture loader against the real kernel, on a one-pod stand-in (capture_env.h): outbound
// capture with the original destination, everything that must not be captured, fail closed,
// the splice, and the sockhash emptying on close. The cross-node version with real processes
// lives in test/e2e/capture_e2e_test.cc.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <string>

#include "capture_env.h"
#include "eventually.h"
#include "privileged.h"

namespace ferry::bpf::testing {
namespace {

using ferry::testing::eventually;
using namespace std::chrono_literals;

const std::vector<std::string> kPodCidrs = {"10.244.0.0/16", "fd00:244::/48"};
const std::vector<std::string> kServiceCidrs = {"10.96.0.0/16", "fd00:96::/112"};

// Nothing is waiting to be accepted.
bool idle(int listener) {
  pollfd p{listener, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

// Reads n bytes and writes them back.
bool echo(int fd, size_t n) {
  std::string buf(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd, buf.data() + got, n - got, 0);
    if (r <= 0) {
      return false;
    }
    got += r;
  }
  return ::send(fd, buf.data(), n, 0) == static_cast<ssize_t>(n);
}

void startWithPod(CaptureEnv& env, BpfConfig config = {}) {
  absl::Status started = env.start(config);
  INFO(started.ToString());
  REQUIRE(started.ok());
  REQUIRE(env.capture->setMeshCidrs(kPodCidrs, kServiceCidrs).ok());
}

TEST_CASE("captured connects reach the outbound listener with their original destination",
          "[bpf][capture][privileged]") {
  FERRY_REQUIRE_ROOT();
  CaptureEnv env;
  startWithPod(env);
  absl::StatusOr<PodHandle> pod = env.enroll();
  REQUIRE(pod.ok());
  UniqueFd outbound = listenIn(env.netns.path(), "::", FERRY_PORT_OUTBOUND);
  REQUIRE(outbound.valid());

  struct Row {
    const char* destination;
    uint16_t port;
    const char* expect;
  };
  const Row rows[] = {
      {"10.96.0.10", 80, "10.96.0.10:80"},         // service VIP
      {"10.244.2.11", 8080, "10.244.2.11:8080"},   // pod on another node
      {"fd00:96::10", 443, "[fd00:96::10]:443"},   // IPv6 VIP
      {"::ffff:10.96.0.11", 81, "10.96.0.11:81"},  // dual-stack socket, IPv4-mapped
  };
  uint64_t n = 0;
  for (const Row& row : rows) {
    INFO(row.destination);
    std::string dst = row.destination;
    uint16_t port = row.port;
    pid_t app = spawnInPod(env.pod.path(), env.netns.path(),
                           [&] { return connectFromPod(dst, port, "ping"); });
    UniqueFd conn = acceptWithin(outbound.get(), 5000);
    REQUIRE(conn.valid());
    absl::StatusOr<OriginalDestination> orig = env.capture->originalDestination(conn.get());
    INFO(orig.status().ToString());
    REQUIRE(orig.ok());
    CHECK(orig->toString() == std::string(row.expect) + " from pod " + std::to_string(pod->index));
    CHECK(echo(conn.get(), 4));
    CHECK(waitChild(app, 5000) == 0);
    ++n;
  }
  absl::StatusOr<Counters> counters = env.capture->counters();
  REQUIRE(counters.ok());
  CHECK((*counters)[FERRY_CTR_CONNECT_CAPTURED] == n);
  CHECK((*counters)[FERRY_CTR_ORIG_DST_RECORDED] == n);
  CHECK((*counters)[FERRY_CTR_SPLICED] == 0);  // the splice is opt-in (BpfConfig.splice)
}

struct Exemption {
  const char* description;
  std::function<void(CaptureEnv&)> setup;
  bool enroll;
  bool opt_out;
  ferry_counter counter;  // must move by one; FERRY_CTR_COUNT: none
  int mark;
};

TEST_CASE("exempt connects go straight to their destination", "[bpf][capture][privileged]") {
  FERRY_REQUIRE_ROOT();
  const Exemption rows[] = {
      {"excluded outbound port",
       [](CaptureEnv& e) {
         REQUIRE(e.capture->setExcludedPorts(PortDirection::kOutbound, {8080}).ok());
       },
       true, false, FERRY_CTR_CONNECT_EXCLUDED_PORT, 0},
      {"destination outside the mesh CIDRs",
       [](CaptureEnv& e) { REQUIRE(e.capture->setMeshCidrs({}, kServiceCidrs).ok()); }, true, false,
       FERRY_CTR_CONNECT_NOT_MESH, 0},
      {"opted-out pod", [](CaptureEnv&) {}, true, true, FERRY_CTR_CONNECT_OPTED_OUT, 0},
      {"unenrolled network namespace", [](CaptureEnv&) {}, false, false, FERRY_CTR_COUNT, 0},
      {"socket with the agent's mark", [](CaptureEnv&) {}, true, false,
       FERRY_CTR_CONNECT_AGENT_SOCKET, 0x7e11},
  };
  for (const Exemption& row : rows) {
    INFO(row.description);
    CaptureEnv env;
    BpfConfig config;
    config.agent_mark = 0x7e11;
    startWithPod(env, config);
    if (row.enroll) {
      REQUIRE(env.enroll(row.opt_out).ok());
    }
    row.setup(env);
    UniqueFd outbound = listenIn(env.netns.path(), "::", FERRY_PORT_OUTBOUND);
    UniqueFd direct = listenIn(env.netns.path(), "10.244.1.11", 8080);
    REQUIRE((outbound.valid() && direct.valid()));
    int mark = row.mark;
    pid_t app = spawnInPod(env.pod.path(), env.netns.path(), [mark] {
      if (mark != 0) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(8080);
        sa.sin_addr.s_addr = htonl(0x0af4010b);  // 10.244.1.11
        ::setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
        return ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 ? 0 : errno;
      }
      return connectFromPod("10.244.1.11", 8080);
    });
    UniqueFd conn = acceptWithin(direct.get(), 5000);
    CHECK(conn.valid());
    CHECK(waitChild(app, 5000) == 0);
    CHECK(idle(outbound.get()));
    absl::StatusOr<Counters> counters = env.capture->counters();
    REQUIRE(counters.ok());
    CHECK((*counters)[FERRY_CTR_CONNECT_CAPTURED] == 0);
    if (row.counter != FERRY_CTR_COUNT) {
      CHECK((*counters)[row.counter] == 1);
    }
  }
}

TEST_CASE("fail closed: with no agent listening a captured connect is refused at once",
          "[bpf][capture][failclosed][privileged]") {
  FERRY_REQUIRE_ROOT();
  CaptureEnv env;
  startWithPod(env);
  REQUIRE(env.enroll().ok());
  // The original destination exists and listens: it must still not be reached.
  UniqueFd original = listenIn(env.netns.path(), "10.244.1.11", 8080);
  REQUIRE(original.valid());
  pid_t app = spawnInPod(env.pod.path(), env.netns.path(),
                         [] { return connectFromPod("10.244.1.11", 8080); });
  CHECK(waitChild(app, 5000) == ECONNREFUSED);
  CHECK(idle(original.get()));
  absl::StatusOr<Counters> counters = env.capture->counters();
  REQUIRE(counters.ok());
  CHECK((*counters)[FERRY_CTR_CONNECT_CAPTURED] == 1);
  CHECK((*counters)[FERRY_CTR_CONNECT_NO_LISTENER] == 1);
  // The refused connect's record is gone.
  CHECK(eventually([&] { return *env.capture->originalDestinationCount() == 0; }, 2s,
                   "*env.capture->originalDestinationCount() == 0"));
}

TEST_CASE("fail closed: a pod without an address of the family is refused in the hook",
          "[bpf][capture][failclosed][privileged]") {
  FERRY_REQUIRE_ROOT();
  CaptureEnv env;
  startWithPod(env);
  PodSpec spec;
  spec.netns_path = env.netns.path();
  spec.ipv4 = "10.244.1.11";  // no IPv6 outbound address
  REQUIRE(env.capture->enrollPod(spec).ok());
  UniqueFd outbound = listenIn(env.netns.path(), "::", FERRY_PORT_OUTBOUND);
  pid_t app = spawnInPod(env.pod.path(), env.netns.path(),
                         [] { return connectFromPod("fd00:96::10", 80); });
  CHECK(waitChild(app, 5000) == EPERM);
  CHECK(idle(outbound.get()));
  absl::StatusOr<Counters> counters = env.capture->counters();
  REQUIRE(counters.ok());
  CHECK((*counters)[FERRY_CTR_CONNECT_REFUSED] == 1);
}

TEST_CASE("spliced sockets leave the sockhash and records go when connections close",
          "[bpf][capture][splice][privileged]") {
  FERRY_REQUIRE_ROOT();
  CaptureEnv env;
  BpfConfig config;
  config.splice = true;
  startWithPod(env, config);
  REQUIRE(env.enroll().ok());
  UniqueFd outbound = listenIn(env.netns.path(), "::", FERRY_PORT_OUTBOUND);
  int go[2];
  REQUIRE(::pipe(go) == 0);
  pid_t app = spawnInPod(env.pod.path(), env.netns.path(), [&] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(80);
    sa.sin_addr.s_addr = htonl(0x0a60000a);  // 10.96.0.10
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      return 1;
    }
    char c = 'a';
    if (::send(fd, &c, 1, 0) != 1) {  // through the splice: the agent's end is in the sockhash
      return 2;
    }
    ::read(go[0], &c, 1);  // hold the connection open until the test has looked
    ::close(fd);
    return 0;
  });
  UniqueFd conn = acceptWithin(outbound.get(), 5000);
  REQUIRE(conn.valid());
  char first = 0;
  ssize_t got = -1;
  for (int i = 0; i < 100 && got != 1; ++i) {  // sockmap recv may say EAGAIN once: retry
    got = ::recv(conn.get(), &first, 1, 0);
  }
  CHECK(got == 1);
  CHECK(first == 'a');
  CHECK(eventually([&] { return (*env.capture->counters())[FERRY_CTR_SPLICE_MSGS] >= 1; }, 2s,
                   "(*env.capture->counters())[FERRY_CTR_SPLICE_MSGS] >= 1"));
  absl::StatusOr<size_t> spliced = env.capture->splicedSocketCount();
  REQUIRE(spliced.ok());
  CHECK(*spliced == 2);
  CHECK(*env.capture->originalDestinationCount() == 1);
  CHECK((*env.capture->counters())[FERRY_CTR_SPLICED] == 2);
  REQUIRE(::write(go[1], "x", 1) == 1);
  CHECK(waitChild(app, 5000) == 0);
  char buf[1];
  ssize_t eof = -1;
  for (int i = 0; i < 100 && eof != 0; ++i) {
    eof = ::recv(conn.get(), buf, 1, 0);
  }
  CHECK(eof == 0);  // EOF from the app
  conn.reset();
  ::close(go[0]);
  ::close(go[1]);
  CHECK(eventually([&] { return *env.capture->splicedSocketCount() == 0; }, 2s,
                   "*env.capture->splicedSocketCount() == 0"));
  CHECK(eventually([&] { return *env.capture->originalDestinationCount() == 0; }, 2s,
                   "*env.capture->originalDestinationCount() == 0"));
}

}  // namespace
}  // namespace ferry::bpf::testing
