// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Same-node traffic is transparent to applications (issue 19 point 1), through the agent's relay
// and on the direct path (agent/proxy/direct_paths.h) that is the default: every size around every
// socket-buffer boundary up to 64 MiB, each a half-close (the client shuts its write side, the
// server answers after EOF), with blocking and with non-blocking readers on both ends, then
// 1,000 short connections. Every byte is compared; a blocking reader that gets EAGAIN, short
// data or a mismatch fails its row. The hidden case runs the same matrix with the sockmap
// splice on (--bpf-splice=on) and reproduces the kernel's EAGAIN (bpf/README.md).
//
// The direct path's own cases: the server tells each client the peer address it sees, so the
// client knows whether the kernel carried it app to app (its own address and port) or the agent
// did (the server's own address); Istio's TCP metrics must count exactly what the apps moved,
// with the direct path on and off; and a policy that starts denying a pair cuts its live
// direct connections and refuses its next ones.
#include <catch2/catch.hpp>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "e2e/manifests.h"
#include "e2e/mesh.h"
#include "e2e/observe.h"
#include "metrics/scrape.h"
#include "poll_until.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

constexpr uint16_t kBlockingPort = 9300;     // the server reads with blocking recv()
constexpr uint16_t kNonBlockingPort = 9301;  // the server reads non-blocking, select() between
constexpr int kShortConnections = 1000;

// Server: `server <blocking port> <non-blocking port>`; each connection is read to EOF and
// everything read is sent back, then closed. Client: `matrix <host> <sizes>` (each size once
// per reader kind) and `many <host> <count>`; rows "ROW ... OK" / "ROW ... FAIL <why>".
constexpr char kApp[] = R"PY(
import os, random, select, socket, sys, threading

def read_to_eof(s, blocking):
    got = bytearray()
    while True:
        if not blocking:
            select.select([s], [], [], 120)
        try:
            b = s.recv(1 << 20)
        except BlockingIOError:
            if blocking:
                raise RuntimeError("EAGAIN from a blocking recv() after %d bytes" % len(got))
            continue
        if not b:
            return bytes(got)
        got += b

def send_all(s, data, blocking):
    if blocking:
        s.sendall(data)
        return
    view, off = memoryview(data), 0
    while off < len(data):
        select.select([], [s], [], 120)
        try:
            off += s.send(view[off:off + (1 << 20)])
        except BlockingIOError:
            pass

def handle(c, blocking):
    try:
        c.setblocking(blocking)
        send_all(c, read_to_eof(c, blocking), blocking)
    except Exception as e:
        print("SERVER-FAIL", "blocking" if blocking else "non-blocking", e, flush=True)
    c.close()

def serve(port, blocking):
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("::", port))
    ls.listen(512)
    return ls

def accept_loop(ls, blocking):
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(c, blocking), daemon=True).start()

def one(host, n, blocking, rng):
    data = rng.randbytes(n)
    s = socket.create_connection((host, BLOCKING if blocking else NONBLOCKING), timeout=120)
    s.settimeout(None)
    s.setblocking(blocking)
    try:
        send_all(s, data, blocking)
        s.shutdown(socket.SHUT_WR)
        got = read_to_eof(s, blocking)
    except Exception as e:
        return str(e)
    finally:
        s.close()
    if got == data:
        return None
    if data.startswith(got):
        return "short: %d of %d bytes" % (len(got), n)
    return "mismatch (%d bytes back of %d)" % (len(got), n)

BLOCKING, NONBLOCKING = int(sys.argv[2]), int(sys.argv[3])
if sys.argv[1] == "server":
    a, b = serve(BLOCKING, True), serve(NONBLOCKING, False)
    threading.Thread(target=accept_loop, args=(a, True), daemon=True).start()
    accept_loop(b, False)
elif sys.argv[1] == "matrix":
    host, rng = sys.argv[4], random.Random(19)
    for n in [int(x) for x in sys.argv[5].split(",")]:
        for blocking in (True, False):
            why = one(host, n, blocking, rng)
            reader = "blocking" if blocking else "non-blocking"
            print("ROW size=%d reader=%s %s" % (n, reader, "FAIL " + why if why else "OK"),
                  flush=True)
elif sys.argv[1] == "many":
    host, count, workers = sys.argv[4], int(sys.argv[5]), 8
    lock, fails, done = threading.Lock(), [], [0]
    def worker(k):
        rng = random.Random(k)
        for i in range(k, count, workers):
            why = one(host, rng.randint(1, 3000), i % 2 == 0, rng)
            with lock:
                done[0] += 1
                if why:
                    fails.append("connection %d: %s" % (i, why))
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(workers)]
    for t in threads: t.start()
    for t in threads: t.join()
    for f in fails[:20]:
        print("FAIL", f)
    print("MANY done=%d failed=%d" % (done[0], len(fails)), flush=True)
)PY";

// 1 byte; both sides of the page, the 16 KiB TLS-record / skb fragment size, 64 KiB (the
// loopback MTU and a typical receive-window step); 1 MiB (the readers' recv size); 64 MiB.
std::string sizes() {
  return absl::StrJoin(
      {1, 4095, 4096, 4097, 16383, 16384, 16385, 65535, 65536, 65537, 1 << 20, 64 << 20}, ",");
}

struct Result {
  int rows = 0;
  std::vector<std::string> failures;
  int many_done = 0;
  int many_failed = -1;
};

Result runMatrix(Mesh& m, const harness::Pod& client, const std::string& host) {
  Result r;
  const std::string blocking = std::to_string(kBlockingPort);
  const std::string non_blocking = std::to_string(kNonBlockingPort);
  auto rows =
      m.run(client, {"python3", "-c", kApp, "matrix", blocking, non_blocking, host, sizes()},
            absl::Seconds(600));
  if (!rows.ok()) {
    r.failures.push_back(absl::StrCat(host, ": matrix: ", rows.status().ToString()));
    return r;
  }
  for (absl::string_view line : absl::StrSplit(*rows, '\n')) {
    if (absl::StartsWith(line, "ROW ")) {
      ++r.rows;
      if (!absl::EndsWith(line, " OK")) {
        r.failures.push_back(absl::StrCat(host, ": ", line));
      }
    }
  }
  auto many = m.run(client,
                    {"python3", "-c", kApp, "many", blocking, non_blocking, host,
                     std::to_string(kShortConnections)},
                    absl::Seconds(600));
  if (!many.ok()) {
    r.failures.push_back(absl::StrCat(host, ": many: ", many.status().ToString()));
    return r;
  }
  for (absl::string_view line : absl::StrSplit(*many, '\n')) {
    if (absl::StartsWith(line, "FAIL ")) {
      r.failures.push_back(absl::StrCat(host, ": ", line));
    }
    if (absl::StartsWith(line, "MANY ")) {
      // "MANY done=<n> failed=<n>"
      std::vector<std::string> parts = absl::StrSplit(line, absl::ByAnyChar(" ="));
      if (parts.size() == 5) {
        r.many_done = std::stoi(parts[2]);
        r.many_failed = std::stoi(parts[4]);
      }
    }
  }
  return r;
}

double kernelEvent(Mesh& m, const std::string& event) {
  return bpfEvent(m.metricsPort(1), event);
}

enum class Mode {
  kDirect,  // the default: an admitted L4 pair goes app to app in the kernel
  kRelay,   // --same-node-direct=off: the agent relays every connection
  kSplice,  // the relay with the sockmap splice (hidden: shows the kernel's EAGAIN)
};

// The whole matrix from n1p1 to n1p2 (same node), IPv4 and IPv6. A server-side failure shows
// as short data at the client, whose comparison is the check.
void sameNodeMatrix(Mode mode) {
  const bool splice = mode == Mode::kSplice;
  MeshOptions options;
  if (mode != Mode::kDirect) {
    options.extra_agent_flags = {"--same-node-direct=off"};
  }
  if (splice) {
    options.extra_agent_flags.push_back("--bpf-splice=on");
  }
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  const harness::Pod& client = m.pod(1, 1);
  const harness::Pod& server = m.pod(1, 2);
  REQUIRE_OK(m.startServer(server,
                           {"python3", "-u", "-c", kApp, "server", std::to_string(kBlockingPort),
                            std::to_string(kNonBlockingPort)},
                           kNonBlockingPort));
  auto before = m.stats(1);
  REQUIRE_OK(before);
  const absl::Time start = absl::Now();
  int rows = 0;
  int connections = 0;
  std::vector<std::string> failures;
  for (const std::string& host : {server.ipv4, server.ipv6}) {
    Result r = runMatrix(m, client, host);
    rows += r.rows;
    connections += r.rows + r.many_done;
    failures.insert(failures.end(), r.failures.begin(), r.failures.end());
    INFO(host);
    CHECK(r.many_done == kShortConnections);
    CHECK(r.many_failed == 0);
  }
  const absl::Duration took = absl::Now() - start;
  auto after = m.stats(1);
  REQUIRE_OK(after);
  const std::vector<std::string> size_list = absl::StrSplit(sizes(), ',');
  const size_t expected_rows = 2 * 2 * size_list.size();  // hosts x readers
  const double spliced = kernelEvent(m, "spliced");
  WARN("same-node matrix" << (splice ? " (splice on)" : "") << ": " << rows << " rows + "
                          << 2 * kShortConnections << " short connections in "
                          << absl::FormatDuration(took) << ", " << failures.size()
                          << " failed, spliced sockets " << spliced
                          << (failures.empty() ? "" : "\n") << absl::StrJoin(failures, "\n"));
  CHECK(rows == static_cast<int>(expected_rows));
  CHECK(failures.empty());
  const int64_t relayed = (*after)["outbound_same_node"] - (*before)["outbound_same_node"];
  const int64_t direct = (*after)["same_node_direct"] - (*before)["same_node_direct"];
  WARN("relayed by the agent " << relayed << ", direct " << direct);
  if (mode == Mode::kDirect) {
    // Each of the 4 pairs (2 addresses x 2 ports) is admitted by the agent once; a connection
    // made while the admission is on its way is relayed too. The rest went app to app.
    CHECK(relayed >= 4);
    CHECK(relayed <= 40);
    CHECK(kernelEvent(m, "connect_direct") == connections - relayed);
  } else {
    // Every connection went through this node's agent as same-node traffic.
    CHECK(relayed == connections);
    CHECK(kernelEvent(m, "connect_direct") == 0);
  }
  if (splice) {
    CHECK(spliced >= 2 * connections);  // both ends of every app <-> agent hop
  } else {
    CHECK(spliced == 0);
  }
}

TEST_CASE(
    "same node: every size and half-close with blocking and non-blocking readers and 1000 "
    "connections arrive byte-exact and never give EAGAIN to a blocking reader",
    "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  sameNodeMatrix(Mode::kDirect);
}

TEST_CASE(
    "same node, relayed by the agent (--same-node-direct=off): the same matrix byte-exact, "
    "never EAGAIN",
    "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  sameNodeMatrix(Mode::kRelay);
}

// Server `server <port>`: sends "PEER <ip> <port>\n" (the peer it sees), then echoes to EOF.
// Client `sizes <host> <port> <n,...>`: one connection per size, each prints
// "CONN direct=<0|1> up=<sent> down=<received>"; `hold <host> <port>` connects until a
// connection is direct, prints HELD and waits for the server (which waits for EOF): CUT <error>
// when the connection is ended under it, EOF or TIMEOUT otherwise; `try <host> <port>`: CONNECTED
// with the path, or REFUSED <error>.
constexpr char kPeerApp[] = R"PY(
import errno, socket, sys, threading, time

def serve(port):
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("::", port))
    ls.listen(64)
    while True:
        c, peer = ls.accept()
        threading.Thread(target=echo, args=(c, peer), daemon=True).start()

def echo(c, peer):
    try:
        ip = peer[0][7:] if peer[0].startswith("::ffff:") else peer[0]
        c.sendall(("PEER %s %d\n" % (ip, peer[1])).encode())
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            c.sendall(b)
    except OSError:
        pass
    c.close()

def connect(host, port):
    s = socket.create_connection((host, port), timeout=60)
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            raise OSError("closed before the PEER line")
        line += b
    _, ip, p = line.decode().split()
    mine = s.getsockname()
    direct = int(ip == mine[0].replace("::ffff:", "") and int(p) == mine[1])
    return s, direct, len(line)

def sizes(host, port, ns):
    for n in ns:
        s, direct, down = connect(host, port)
        data = bytes(i % 251 for i in range(n))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = bytearray()
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            got += b
        s.close()
        ok = got == data
        print("CONN direct=%d up=%d down=%d %s" % (direct, n, down + len(got),
              "OK" if ok else "MISMATCH"), flush=True)

def hold(host, port):
    for _ in range(200):
        s, direct, _ = connect(host, port)
        if not direct:
            s.close()
            time.sleep(0.05)
            continue
        print("HELD", flush=True)
        s.settimeout(60)
        try:
            b = s.recv(1)
            print("EOF" if not b else "DATA", flush=True)
        except socket.timeout:
            print("TIMEOUT", flush=True)
        except OSError as e:
            print("CUT", errno.errorcode.get(e.errno, e.errno), flush=True)
        return
    print("NEVER-DIRECT", flush=True)

def attempt(host, port):
    try:
        s, direct, _ = connect(host, port)
        s.sendall(b"x")
        s.shutdown(socket.SHUT_WR)
        got = s.recv(10)
        print("CONNECTED direct=%d echo=%d" % (direct, len(got)), flush=True)
    except OSError as e:
        print("REFUSED", errno.errorcode.get(e.errno, e.errno) if e.errno else e, flush=True)

mode, port = sys.argv[1], int(sys.argv[3] if sys.argv[1] != "server" else sys.argv[2])
if mode == "server":
    serve(port)
elif mode == "sizes":
    sizes(sys.argv[2], port, [int(x) for x in sys.argv[4].split(",")])
elif mode == "hold":
    hold(sys.argv[2], port)
else:
    attempt(sys.argv[2], port)
)PY";

constexpr uint16_t kPeerPort = 9310;

struct Totals {
  int connections = 0;
  int direct = 0;
  int64_t up = 0;
  int64_t down = 0;
  int bad = 0;
};

Totals runSizes(Mesh& m, const harness::Pod& client, const std::string& host) {
  Totals t;
  // The first connection of the pair goes through the agent, which admits the pair; the rest
  // cross every buffer boundary up to 4 MiB.
  auto out = m.run(client, {"python3", "-c", kPeerApp, "sizes", host, std::to_string(kPeerPort),
                            "100,1,4097,16385,65537,1048577,4194305,0,3000"});
  if (!out.ok()) {
    ++t.bad;
    return t;
  }
  for (absl::string_view line : absl::StrSplit(*out, '\n')) {
    std::vector<std::string> f = absl::StrSplit(line, absl::ByAnyChar(" ="));
    if (f.size() != 8 || f[0] != "CONN") {
      continue;
    }
    ++t.connections;
    t.direct += std::stoi(f[2]);
    t.up += std::stoll(f[4]);
    t.down += std::stoll(f[6]);
    t.bad += f[7] == "OK" ? 0 : 1;
  }
  return t;
}

// A mesh with the peer-telling echo server on n1p2.
std::unique_ptr<Mesh> peerMesh(const MeshOptions& options) {
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  REQUIRE_OK((*mesh)->startServer(
      (*mesh)->pod(1, 2), {"python3", "-u", "-c", kPeerApp, "server", std::to_string(kPeerPort)},
      kPeerPort));
  return *std::move(mesh);
}

void exactTelemetry(Mode mode) {
  MeshOptions options;
  if (mode == Mode::kRelay) {
    options.extra_agent_flags = {"--same-node-direct=off"};
  }
  std::unique_ptr<Mesh> mesh = peerMesh(options);
  Mesh& m = *mesh;
  const harness::Pod& client = m.pod(1, 1);
  const harness::Pod& server = m.pod(1, 2);
  Totals all;
  for (const std::string& host : {server.ipv4, server.ipv6}) {
    Totals t = runSizes(m, client, host);
    INFO(host);
    CHECK(t.connections == 9);
    CHECK(t.bad == 0);
    if (mode == Mode::kDirect) {
      CHECK(t.direct >= 7);  // the first goes through the agent, maybe one more while it admits
    } else {
      CHECK(t.direct == 0);
    }
    all.connections += t.connections;
    all.direct += t.direct;
    all.up += t.up;
    all.down += t.down;
  }
  WARN((mode == Mode::kDirect ? "direct path on" : "direct path off")
       << ": " << all.connections << " connections, " << all.direct << " direct, " << all.up
       << " B up, " << all.down << " B down");
  // Both reporters, as two agents would report: every connection, every byte, on either path.
  for (const char* reporter : {"destination", "source"}) {
    INFO("reporter " << reporter);
    const std::map<std::string, std::string> labels = {
        {"reporter", reporter},
        {"source_workload", client.name},
        {"destination_workload", server.name},
        {"connection_security_policy", "mutual_tls"}};
    std::string text = scrapeUntil(m.metricsPort(1), "istio_tcp_connections_closed_total", labels,
                                   all.connections);
    CHECK(metrics::testing::sampleValue(text, "istio_tcp_connections_opened_total", labels) ==
          all.connections);
    CHECK(metrics::testing::sampleValue(text, "istio_tcp_connections_closed_total", labels) ==
          all.connections);
    CHECK(metrics::testing::sampleValue(text, "istio_tcp_received_bytes_total", labels) == all.up);
    CHECK(metrics::testing::sampleValue(text, "istio_tcp_sent_bytes_total", labels) == all.down);
  }
  CHECK(m.stat(1, "same_node_direct") == all.direct);
  CHECK(kernelEvent(m, "connect_direct") == all.direct);
  CHECK(kernelEvent(m, "inbound_direct") == all.direct);
}

TEST_CASE(
    "same-node direct path: the kernel carries an admitted pair app to app, and Istio's TCP "
    "metrics count every connection and byte exactly, as with the agent's relay",
    "[privileged][e2e][telemetry]") {
  FERRY_REQUIRE_ROOT();
  SECTION("direct path on (the default)") {
    exactTelemetry(Mode::kDirect);
  }
  SECTION("direct path off") {
    exactTelemetry(Mode::kRelay);
  }
}

TEST_CASE(
    "same-node direct path: a policy that starts denying the pair cuts its live direct "
    "connection and refuses its next ones",
    "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  std::unique_ptr<Mesh> mesh = peerMesh({});
  Mesh& m = *mesh;
  const harness::Pod& client = m.pod(1, 1);
  const harness::Pod& server = m.pod(1, 2);
  for (const std::string& host : {server.ipv4, server.ipv6}) {
    INFO(host);
    const int64_t direct_before = m.stat(1, "same_node_direct");
    absl::StatusOr<std::string> held;
    std::thread holder([&] {
      held =
          m.run(client, {"python3", "-u", "-c", kPeerApp, "hold", host, std::to_string(kPeerPort)});
    });
    // The holder's direct connection is open once sockops has reported it.
    const bool opened =
        testing::pollUntil([&] { return m.stat(1, "same_node_direct") > direct_before; },
                           std::chrono::seconds(30), std::chrono::milliseconds(50));
    CHECK(opened);
    const int64_t revoked_before = m.stat(1, "policy_revoked");
    REQUIRE_OK(m.applyManifest("deny-n1p1.yaml", kDenyN1p1ToN1p2));
    holder.join();
    REQUIRE_OK(held);
    CHECK_THAT(*held, Catch::Contains("HELD"));
    CHECK_THAT(*held, Catch::Contains("CUT"));
    CHECK(m.stat(1, "policy_revoked") > revoked_before);
    auto again = m.run(client, {"python3", "-c", kPeerApp, "try", host, std::to_string(kPeerPort)});
    REQUIRE_OK(again);
    CHECK_THAT(*again, !Catch::Contains("CONNECTED"));
    REQUIRE_OK(m.removeManifest("deny-n1p1.yaml"));
  }
}

// Hidden: documents the kernel behaviour that keeps the sockmap splice off (bpf/README.md,
// "Why it stays off"); run with `e2e_same_node_test "[splice]"`. Expected to fail on 6.18.
TEST_CASE("same node with the sockmap splice on: the same matrix", "[.][splice][privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  sameNodeMatrix(Mode::kSplice);
}

}  // namespace
}  // namespace ferry::e2e
