// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// HTTP parsing/normalization throughput and L7 filter cost relative to passthrough. See
// README.md. Not a test: prints figures, asserts nothing.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "http/h2_peer.h"
#include "http/http1_filter.h"
#include "http/http1_parser.h"
#include "http/http2_filter.h"
#include "http/path.h"

using namespace ferry::http;
using Clock = std::chrono::steady_clock;

namespace {

double g_seconds = 1.0;

// A browser-like GET and an API-like POST, ~500 bytes of head each.
std::string sampleRequests() {
  std::string get =
      "GET /api/v1/users/12345/orders/./recent/../latest?limit=20&page=3 HTTP/1.1\r\n"
      "Host: orders.shop.svc.cluster.local:8080\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 "
      "Safari/537.36\r\n"
      "Accept: application/json, text/plain, */*\r\n"
      "Accept-Encoding: gzip, deflate, br\r\n"
      "Accept-Language: en-US,en;q=0.9\r\n"
      "Authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTYifQ.sig\r\n"
      "Cookie: session=abcdef0123456789; theme=dark\r\n"
      "X-Request-Id: 9f8e7d6c-5b4a-3210-fedc-ba9876543210\r\n"
      "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n";
  std::string post =
      "POST /api/v1/cart/%61dd HTTP/1.1\r\n"
      "Host: cart.shop.svc.cluster.local\r\n"
      "Content-Type: application/json\r\n"
      "Content-Length: 64\r\n"
      "X-Request-Id: 0f8e7d6c-5b4a-3210-fedc-ba9876543210\r\n\r\n" +
      std::string(64, 'j');
  return get + post;
}

const std::string kResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 32\r\n"
    "Date: Sun, 22 Nov 2026 02:00:00 GMT\r\n\r\n" +
    std::string(32, 'r');

template <typename Fn>
double timeIt(Fn&& fn, uint64_t& iterations) {
  iterations = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(g_seconds);
  auto now = start;
  do {
    for (int i = 0; i < 64; ++i) {
      fn();
    }
    iterations += 64;
    now = Clock::now();
  } while (now < end);
  return std::chrono::duration<double>(now - start).count();
}

void benchParse() {
  const std::string pair = sampleRequests();
  std::string wire;
  for (int i = 0; i < 64; ++i) {
    wire += pair;
  }
  const size_t requests_per_wire = 128;
  Http1Parser parser(Http1Parser::Kind::kRequest);
  size_t sink = 0;
  auto parseOnly = [&] {
    std::string_view in(wire);
    while (!in.empty()) {
      auto ev = parser.next(in);
      if (ev.type == Http1Parser::Event::Type::kError) {
        std::abort();
      }
      sink += ev.data.size();
    }
    parser.next(in);  // completes the last message
  };
  PathOptions opts;
  auto parseNormalize = [&] {
    std::string_view in(wire);
    while (!in.empty()) {
      auto ev = parser.next(in);
      if (ev.type == Http1Parser::Event::Type::kHead) {
        auto t = parseRequestTarget(parser.head().method, parser.head().target, opts);
        if (!t.ok()) {
          std::abort();
        }
        sink += t->path.size();
      }
    }
    parser.next(in);
  };
  uint64_t n;
  double secs = timeIt(parseOnly, n);
  const double mb = static_cast<double>(wire.size()) * n / secs / 1e6;
  std::printf("http1 parse               %8.0f MB/s  %10.0f req/s\n", mb,
              static_cast<double>(requests_per_wire) * n / secs);
  secs = timeIt(parseNormalize, n);
  std::printf("http1 parse + normalize   %8.0f MB/s  %10.0f req/s\n",
              static_cast<double>(wire.size()) * n / secs / 1e6,
              static_cast<double>(requests_per_wire) * n / secs);
  std::vector<std::string> paths = {"/api/v1/users/12345/orders/./recent/../latest",
                                    "//a/%2e%2e/b%2fc\\d/%7euser", "/static/js/app.min.js"};
  size_t k = 0;
  secs = timeIt(
      [&] {
        auto p = normalizePath(paths[k++ % paths.size()], opts);
        sink += p->size();
      },
      n);
  std::printf("path normalize            %8.0f ns/path\n", secs * 1e9 / n);
  if (sink == 42) {
    std::puts("");
  }
}

void benchFilter() {
  const std::string pair = sampleRequests();
  const std::string responses = kResponse + kResponse;
  // Passthrough: what an L4 user-space proxy does per request pair: copy both ways.
  FilterOutput out;
  uint64_t n;
  double secs = timeIt(
      [&] {
        out.to_upstream.append(pair);
        out.to_downstream.append(responses);
        out.clear();
      },
      n);
  const double pass_rate = 2.0 * n / secs;
  Http1Filter filter({}, [](const RequestView&) { return AuthzDecision{true, "p", "r"}; });
  secs = timeIt(
      [&] {
        filter.onDownstreamData(pair, out);
        filter.onUpstreamData(responses, out);
        out.clear();
      },
      n);
  const double l7_rate = 2.0 * n / secs;
  std::printf("http1 passthrough copy    %10.0f req/s\n", pass_rate);
  std::printf("http1 L7 filter           %10.0f req/s   ratio L7/passthrough %.3f\n", l7_rate,
              l7_rate / pass_rate);
}

void benchH2() {
  using ferry::http::testing::H2Message;
  using ferry::http::testing::H2Peer;
  auto responder = [](const H2Message&, H2Peer::Reply& r) {
    r.headers = {{":status", "200"}, {"content-type", "application/json"}};
    r.body = std::string(32, 'r');
    return true;
  };
  std::vector<std::pair<std::string, std::string>> req = {
      {":method", "GET"},
      {":scheme", "http"},
      {":authority", "orders.shop.svc.cluster.local"},
      {":path", "/api/v1/users/12345/orders/latest?limit=20"},
      {"user-agent", "grpc-go/1.60"},
      {"accept", "application/json"},
      {"x-request-id", "9f8e7d6c-5b4a-3210-fedc-ba9876543210"}};
  const int kBatch = 50;
  auto runDirect = [&](uint64_t& total) {
    H2Peer client(false), app(true, responder);
    uint64_t n;
    double secs = timeIt(
        [&] {
          for (int i = 0; i < kBatch; ++i) {
            client.request(req);
          }
          for (int k = 0; k < 20; ++k) {
            std::string c = client.drain();
            app.feed(c);
            std::string a = app.drain();
            client.feed(a);
            if (c.empty() && a.empty()) {
              break;
            }
          }
          client.messages.clear();
          app.messages.clear();
        },
        n);
    total = n * kBatch;
    return total / secs;
  };
  auto runFiltered = [&](uint64_t& total) {
    H2Peer client(false), app(true, responder);
    auto f = Http2Filter::create({}, [](const RequestView&) {
      return AuthzDecision{true, "", ""};
    });
    FilterOutput out;
    (*f)->start(out);
    uint64_t n;
    double secs = timeIt(
        [&] {
          for (int i = 0; i < kBatch; ++i) {
            client.request(req);
          }
          for (int k = 0; k < 40; ++k) {
            std::string c = client.drain();
            if (!c.empty()) {
              (*f)->onDownstreamData(c, out);
            }
            std::string a = app.drain();
            if (!a.empty()) {
              (*f)->onUpstreamData(a, out);
            }
            std::string u = std::exchange(out.to_upstream, {});
            std::string d = std::exchange(out.to_downstream, {});
            app.feed(u);
            client.feed(d);
            if (c.empty() && a.empty() && u.empty() && d.empty()) {
              break;
            }
          }
          client.messages.clear();
          app.messages.clear();
        },
        n);
    total = n * kBatch;
    return total / secs;
  };
  uint64_t t1, t2;
  const double direct = runDirect(t1);
  const double filtered = runFiltered(t2);
  std::printf("h2 client<->app direct    %10.0f req/s (nghttp2 on both ends)\n", direct);
  std::printf("h2 through L7 filter      %10.0f req/s   ratio filtered/direct %.3f\n", filtered,
              filtered / direct);
}

// The same comparison with the syscalls a proxy really makes: client, proxy and app are
// connected by Unix socketpairs and driven in lock-step from one thread, one request in flight
// (closed loop). Passthrough copies bytes; L7 runs them through the filter.
void benchFilterSockets() {
  const std::string request =
      "GET /api/v1/users/12345/orders/latest?limit=20 HTTP/1.1\r\n"
      "Host: orders.shop.svc.cluster.local\r\nUser-Agent: bench\r\nAccept: */*\r\n"
      "X-Request-Id: 9f8e7d6c-5b4a-3210-fedc-ba9876543210\r\n\r\n";
  auto run = [&](bool l7) {
    int cp[2], pa[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, cp) != 0 ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, pa) != 0) {
      std::perror("socketpair");
      std::exit(1);
    }
    Http1Filter filter({}, [](const RequestView&) { return AuthzDecision{true, "p", "r"}; });
    FilterOutput out;
    char buf[16384];
    auto hop = [&](int from, int to, bool downstream) {
      ssize_t n = read(from, buf, sizeof buf);
      if (n <= 0) {
        std::abort();
      }
      std::string_view data(buf, static_cast<size_t>(n));
      if (!l7) {
        if (write(to, data.data(), data.size()) != n) {
          std::abort();
        }
        return;
      }
      if (downstream) {
        filter.onDownstreamData(data, out);
      } else {
        filter.onUpstreamData(data, out);
      }
      const std::string& w = downstream ? out.to_upstream : out.to_downstream;
      if (write(to, w.data(), w.size()) != static_cast<ssize_t>(w.size())) {
        std::abort();
      }
      out.clear();
    };
    uint64_t n;
    double secs = timeIt(
        [&] {
          if (write(cp[0], request.data(), request.size()) < 0) {
            std::abort();
          }
          hop(cp[1], pa[0], true);                   // proxy: client -> app
          ssize_t r = read(pa[1], buf, sizeof buf);  // app reads the request ...
          if (r <= 0 || write(pa[1], kResponse.data(), kResponse.size()) < 0) {  // ... answers
            std::abort();
          }
          hop(pa[0], cp[1], false);  // proxy: app -> client
          if (read(cp[0], buf, sizeof buf) <= 0) {
            std::abort();
          }
        },
        n);
    for (int fd : {cp[0], cp[1], pa[0], pa[1]}) {
      close(fd);
    }
    return n / secs;
  };
  const double pass = run(false);
  const double l7 = run(true);
  std::printf("sockets: passthrough      %10.0f req/s (1 in flight, 8 syscalls/request)\n", pass);
  std::printf("sockets: L7 filter        %10.0f req/s   ratio L7/passthrough %.3f\n", l7,
              l7 / pass);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::printf(
        "usage: ferry_http_bench [seconds per measurement]\n"
        "HTTP parsing, L7 filter and HTTP/2 throughput relative to passthrough.\n");
    return 0;
  }
  if (argc > 1) {
    g_seconds = std::atof(argv[1]);
  }
  benchParse();
  benchFilter();
  benchFilterSockets();
  benchH2();
  return 0;
}
