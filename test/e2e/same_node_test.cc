// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Same-node traffic is transparent to applications (issue 19 point 1): every size around every
// socket-buffer boundary up to 64 MiB, each a half-close (the client shuts its write side, the
// server answers after EOF), with blocking and with non-blocking readers on both ends, then
// 1,000 short connections. Every byte is compared; a blocking reader that gets EAGAIN, short
// data or a mismatch fails its row. The hidden case runs the same matrix with the sockmap
// splice on (--bpf-splice=on) and reproduces the kernel's EAGAIN (bpf/README.md).
#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "e2e/mesh.h"
#include "e2e/observe.h"
#include "metrics/scrape.h"
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
  auto page = httpGet(m.metricsPort(1), "/metrics");
  if (!page.ok()) {
    return -1;
  }
  return metrics::testing::sampleValue(*page, "ferry_bpf_events_total", {{"event", event}})
      .value_or(-1);
}

// The whole matrix from n1p1 to n1p2 (same node), IPv4 and IPv6. A server-side failure shows
// as short data at the client, whose comparison is the check.
void sameNodeMatrix(bool splice) {
  MeshOptions options;
  if (splice) {
    options.extra_agent_flags = {"--bpf-splice=on"};
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
  // Every connection went through this node's agent as same-node traffic.
  CHECK((*after)["outbound_same_node"] - (*before)["outbound_same_node"] == connections);
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
  sameNodeMatrix(/*splice=*/false);
}

// Hidden: documents the kernel behaviour that keeps the sockmap splice off (bpf/README.md,
// "Why it stays off"); run with `e2e_same_node_test "[splice]"`. Expected to fail on 6.18.
TEST_CASE("same node with the sockmap splice on: the same matrix", "[.][splice][privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  sameNodeMatrix(/*splice=*/true);
}

}  // namespace
}  // namespace ferry::e2e
