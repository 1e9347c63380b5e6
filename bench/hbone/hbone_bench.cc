// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// In-memory HBONE cost, client and server on one thread (so "per core" covers both ends):
//   - bulk throughput through HBONE, next to the same bytes through bare TLS 1.3 (the
//     baseline: the ratio is what HTTP/2 framing and flow control cost on top of the crypto);
//   - mutual-TLS handshakes per second, bare and with the HBONE SETTINGS exchange.
// Usage: hbone_bench [MiB per run, default 256]

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fakes/ca/fake_ca.h"
#include "hbone/client.h"
#include "hbone/server.h"

namespace ferry::hbone {
namespace {

double cpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::shared_ptr<const tls::TlsContext> contextFor(const fakes::IssuedCert& cert,
                                                  std::shared_ptr<const tls::TrustBundle> bundle) {
  auto identity = tls::TlsIdentity::fromPem(cert.cert_pem, cert.key_pem);
  auto ctx = tls::TlsContext::create(*identity, std::move(bundle));
  if (!identity.ok() || !ctx.ok()) {
    std::fprintf(stderr, "bench setup failed\n");
    std::exit(1);
  }
  return *ctx;
}

void move(net::ByteBuffer& from, net::ByteBuffer& to) {
  to.append(from.readable());
  from.consume(from.size());
}

bool pump(HboneConnection& a, HboneConnection& b) {
  bool moved = false;
  for (int i = 0; i < 64; ++i) {
    bool step = false;
    if (!a.networkOut().empty()) {
      move(a.networkOut(), b.networkIn());
      (void)a.onNetworkOutputDrained();
      (void)b.onNetworkInput();
      step = true;
    }
    if (!b.networkOut().empty()) {
      move(b.networkOut(), a.networkIn());
      (void)b.onNetworkOutputDrained();
      (void)a.onNetworkInput();
      step = true;
    }
    if (!step) {
      break;
    }
    moved = true;
  }
  return moved;
}

struct Pair {
  std::unique_ptr<HboneClient> client;
  std::unique_ptr<HboneServer> server;
};

Pair connect(const std::shared_ptr<const tls::TlsContext>& cctx,
             const std::shared_ptr<const tls::TlsContext>& sctx) {
  Pair p{std::move(*HboneClient::create(cctx)),
         std::move(*HboneServer::create(sctx, [](const StreamRequest&) { return 200; }))};
  pump(*p.client, *p.server);
  return p;
}

// HBONE: `streams` streams, each sending total/streams bytes client -> server.
double hboneMBps(const std::shared_ptr<const tls::TlsContext>& cctx,
                 const std::shared_ptr<const tls::TlsContext>& sctx, size_t total, int streams) {
  Pair p = connect(cctx, sctx);
  std::vector<StreamId> ids;
  for (int i = 0; i < streams; ++i) {
    ids.push_back(*p.client->openStream(*Authority::parse("10.244.2.11:5201")));
  }
  std::vector<uint8_t> chunk(64 * 1024, 0x5a);
  std::vector<uint8_t> sink(64 * 1024);
  std::vector<size_t> left(streams, total / streams);
  size_t received = 0;
  std::vector<HboneEvent> events;
  const double start = cpuSeconds();
  while (received < total) {
    for (int i = 0; i < streams; ++i) {
      if (left[i] > 0) {
        left[i] -= p.client->write(ids[i], {chunk.data(), std::min(chunk.size(), left[i])});
      }
    }
    pump(*p.client, *p.server);
    for (StreamId id : ids) {
      while (true) {
        ReadResult r = p.server->read(id, absl::MakeSpan(sink));
        received += r.bytes;
        if (r.bytes == 0) {
          break;
        }
      }
    }
    p.client->takeEvents(events);
    p.server->takeEvents(events);
  }
  const double cpu = cpuSeconds() - start;
  return static_cast<double>(total) / 1e6 / cpu;
}

// Baseline: the same bytes through bare TLS sessions (records of 16 KiB, no HTTP/2).
double tlsMBps(const std::shared_ptr<const tls::TlsContext>& cctx,
               const std::shared_ptr<const tls::TlsContext>& sctx, size_t total) {
  auto c = std::move(*tls::TlsSession::create(cctx, tls::TlsRole::kClient));
  auto s = std::move(*tls::TlsSession::create(sctx, tls::TlsRole::kServer));
  for (int i = 0; i < 10 && !(c->handshakeDone() && s->handshakeDone()); ++i) {
    (void)c->handshake();
    move(c->networkOut(), s->networkIn());
    (void)s->handshake();
    move(s->networkOut(), c->networkIn());
  }
  std::vector<uint8_t> chunk(64 * 1024, 0x5a);
  std::vector<uint8_t> sink(64 * 1024);
  size_t received = 0;
  const double start = cpuSeconds();
  while (received < total) {
    (void)c->write(chunk);
    move(c->networkOut(), s->networkIn());
    while (true) {
      size_t n = s->read(absl::MakeSpan(sink)).value_or(0);
      received += n;
      if (n == 0) {
        break;
      }
    }
  }
  return static_cast<double>(total) / 1e6 / (cpuSeconds() - start);
}

template <typename F>
double perCpuSecond(int iterations, F f) {
  const double start = cpuSeconds();
  for (int i = 0; i < iterations; ++i) {
    f();
  }
  return iterations / (cpuSeconds() - start);
}

}  // namespace
}  // namespace ferry::hbone

int main(int argc, char** argv) {
  using namespace ferry;
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::printf(
        "usage: hbone_bench [MiB per run, default 256]\n"
        "HBONE bulk throughput and mTLS handshakes per CPU-second, in memory.\n");
    return 0;
  }
  const size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 256;
  const size_t total = mib << 20;
  fakes::FakeCa ca;
  auto cctx = hbone::contextFor(ca.issue("bench", "client"), ca.bundle());
  auto sctx = hbone::contextFor(ca.issue("bench", "server"), ca.bundle());

  const double tls_rate = hbone::tlsMBps(cctx, sctx, total);
  const double h1 = hbone::hboneMBps(cctx, sctx, total, 1);
  const double h8 = hbone::hboneMBps(cctx, sctx, total, 8);
  std::printf("bulk, %zu MiB, client+server on one core (MB per CPU-second):\n", mib);
  std::printf("  bare TLS 1.3 (baseline)   %8.0f\n", tls_rate);
  std::printf("  HBONE, 1 stream           %8.0f  (%.2f x baseline)\n", h1, h1 / tls_rate);
  std::printf("  HBONE, 8 streams          %8.0f  (%.2f x baseline)\n", h8, h8 / tls_rate);

  const double tls_hs = hbone::perCpuSecond(500, [&] {
    auto c = std::move(*tls::TlsSession::create(cctx, tls::TlsRole::kClient));
    auto s = std::move(*tls::TlsSession::create(sctx, tls::TlsRole::kServer));
    for (int i = 0; i < 10 && !(c->handshakeDone() && s->handshakeDone()); ++i) {
      (void)c->handshake();
      hbone::move(c->networkOut(), s->networkIn());
      (void)s->handshake();
      hbone::move(s->networkOut(), c->networkIn());
    }
  });
  const double hbone_hs = hbone::perCpuSecond(500, [&] { hbone::connect(cctx, sctx); });
  std::printf("mutual-TLS handshakes per CPU-second (both ends on one core):\n");
  std::printf("  bare TLS 1.3 (baseline)   %8.0f\n", tls_hs);
  std::printf("  HBONE connection setup    %8.0f  (%.2f x baseline)\n", hbone_hs,
              hbone_hs / tls_hs);
  return 0;
}
