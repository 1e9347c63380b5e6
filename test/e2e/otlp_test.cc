// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Traces to a collector (issue 22 point 3) through real agents fed by ferry-controller: the
// agents export spans over OTLP/HTTP to a receiver in this test (loopback: the agents live in
// the host's network namespace), which saves each request body; OpenTelemetry JS's own protobuf
// classes (otlp/decode.mjs, @opentelemetry/otlp-transformer from npm) decode them. The client
// n1p1 calls the routed Service front (n2p1:9080) with its own traceparent: the client span of
// node 1's agent is a child of it, and the server span of node 2's agent a child of that, whose
// id the app receives.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/loopback_listener.h"
#include "e2e/mesh.h"
#include "e2e/observe.h"
#include "metrics/scrape.h"
#include "privileged.h"
#include "status_testing.h"
#include "trace/traceparent.h"

namespace ferry::e2e {
namespace {

using metrics::testing::sampleValue;

constexpr char kFrontVip[] = "10.96.0.40";
constexpr uint16_t kAppPort = 9080;
constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kAppSpan[] = "00f067aa0ba902b7";  // the client app's own span
constexpr int kServer = 2, kClient = 3;          // OTLP SpanKind

// An OTLP/HTTP receiver on loopback: a thread per connection (each agent keeps one), answers
// 200 to every POST and writes each body to <dir>/<n>.pb.
class OtlpReceiver {
 public:
  explicit OtlpReceiver(std::string dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    fd_ = ::ferry::agent::testing::loopbackListener(&port_);
    accept_ = std::thread([this] { acceptLoop(); });
  }
  ~OtlpReceiver() {
    ::shutdown(fd_, SHUT_RDWR);
    accept_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int c : conns_) {
        ::shutdown(c, SHUT_RDWR);
      }
    }
    for (std::thread& t : threads_) {
      t.join();
    }
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> files() {
    std::lock_guard<std::mutex> lock(mu_);
    return files_;
  }
  std::vector<std::string> heads() {
    std::lock_guard<std::mutex> lock(mu_);
    return heads_;
  }

 private:
  void acceptLoop() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) {
        return;
      }
      std::lock_guard<std::mutex> lock(mu_);
      conns_.push_back(c);
      threads_.emplace_back([this, c] { serve(c); });
    }
  }
  void serve(int c) {
    std::string in;
    char buf[16384];
    for (;;) {
      const size_t head_end = in.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::string head = in.substr(0, head_end);
        const size_t at = absl::AsciiStrToLower(head).find("content-length:");
        const size_t length = at == std::string::npos ? 0 : std::stoul(head.substr(at + 15));
        if (in.size() >= head_end + 4 + length) {
          save(head, in.substr(head_end + 4, length));
          in.erase(0, head_end + 4 + length);
          const std::string ok =
              "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: "
              "0\r\n\r\n";
          ::send(c, ok.data(), ok.size(), MSG_NOSIGNAL);
          continue;
        }
      }
      const ssize_t n = ::recv(c, buf, sizeof(buf), 0);
      if (n <= 0) {
        break;
      }
      in.append(buf, static_cast<size_t>(n));
    }
    ::close(c);
  }
  void save(const std::string& head, const std::string& body) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string file = absl::StrCat(dir_, "/", files_.size(), ".pb");
    std::ofstream(file, std::ios::binary) << body;
    files_.push_back(file);
    heads_.push_back(head);
  }

  std::string dir_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread accept_;
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> threads_;
  std::vector<std::string> files_, heads_;
};

// Every span in the saved bodies, decoded by OpenTelemetry JS.
nlohmann::json decodeSpans(const std::vector<std::string>& files) {
  std::string cmd = absl::StrCat("node ", FERRY_OTLP_DECODER);
  for (const std::string& f : files) {
    absl::StrAppend(&cmd, " ", f);
  }
  absl::StrAppend(&cmd, " 2>&1");
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
    out.append(buf, n);
  }
  const int rc = ::pclose(p);
  INFO(out);
  REQUIRE(rc == 0);
  return nlohmann::json::parse(out);
}

std::string routedFront() {
  return absl::StrCat(
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: front\n  namespace: default\nspec:\n"
      "  clusterIP: ",
      kFrontVip, "\n  ports:\n  - name: http\n    port: 80\n    targetPort: ", kAppPort,
      "\n  selector:\n    app: n2p1\n---\n"
      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: front\n"
      "  namespace: default\nspec:\n  parentRefs:\n  - {group: \"\", kind: Service, name: front, "
      "port: 80}\n  rules:\n  - backendRefs:\n    - {name: front, port: 80}\n");
}

// POST /<path> from n1p1 to front through the mesh; returns the traceparent the app received.
std::string post(Mesh& m, const std::string& path, const std::string& traceparent) {
  std::vector<std::string> argv = {
      "/usr/bin/python3", meshAppsScript(), "http-post",     absl::StrCat("--host=", kFrontVip),
      "--port=80",        "--bytes=7",      "--text=" + path};
  if (!traceparent.empty()) {
    argv.push_back("--traceparent=" + traceparent);
  }
  auto out = m.run(m.pod(1, 1), argv);
  REQUIRE_OK(out);
  INFO(*out);
  // "200 <port> path=/x traceparent=00-...-01 bytes=7"
  std::vector<std::string> f = absl::StrSplit(absl::StripTrailingAsciiWhitespace(*out), ' ');
  REQUIRE(f.size() == 5);
  REQUIRE(f[0] == "200");
  REQUIRE(f[3].starts_with("traceparent="));
  return f[3].substr(12);
}

TEST_CASE("spans from both agents reach an OTLP collector, decodable by OpenTelemetry, chained",
          "[privileged][e2e][telemetry]") {
  FERRY_REQUIRE_ROOT();
  const std::string dir = absl::StrCat("/tmp/ferry-otlp-", ::getpid());
  OtlpReceiver receiver(dir);
  MeshOptions options;
  // Ratio 0: only a request whose traceparent says "sampled" is exported (parent-based).
  options.extra_agent_flags = {
      absl::StrCat("--trace-endpoint=http://127.0.0.1:", receiver.port(), "/v1/traces"),
      "--trace-sampling=0"};
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE_OK(m.applyManifest("front.yaml", routedFront()));
  REQUIRE_OK(m.startApp(m.pod(2, 1), {"http-server", absl::StrCat("--port=", kAppPort)}, kAppPort));

  // Not exported: an unsampled caller, and a caller without a trace (ratio 0). Then one sampled.
  post(m, "/unsampled", absl::StrCat("00-", kTraceId, "-", kAppSpan, "-00"));
  post(m, "/untraced", "");
  const std::string seen =
      post(m, "/orders?id=1", absl::StrCat("00-", kTraceId, "-", kAppSpan, "-01"));
  auto app_parent = trace::parseTraceparent(seen);
  REQUIRE_OK(app_parent);
  CHECK(app_parent->traceIdHex() == kTraceId);
  CHECK(app_parent->sampled());

  // Each agent exports its span of the sampled request; spans leave in the order they finished,
  // so once it is out, an earlier unsampled one would have been too.
  for (int node : {1, 2}) {
    std::string text =
        scrapeUntil(m.metricsPort(node), "ferry_trace_spans_total", {{"outcome", "exported"}}, 1);
    INFO("node " << node << ": " << text.substr(std::min(text.find("ferry_trace"), text.size())));
    CHECK(sampleValue(text, "ferry_trace_spans_total", {{"outcome", "exported"}}) == 1);
    CHECK(sampleValue(text, "ferry_trace_spans_total", {{"outcome", "failed"}}) == 0);
    CHECK(sampleValue(text, "ferry_trace_spans_total", {{"outcome", "dropped"}}) == 0);
  }
  for (const std::string& head : receiver.heads()) {
    INFO(head);
    CHECK(head.starts_with("POST /v1/traces HTTP/1.1"));
    CHECK(absl::AsciiStrToLower(head).find("content-type: application/x-protobuf") !=
          std::string::npos);
  }

  nlohmann::json spans = decodeSpans(receiver.files());
  INFO(spans.dump(2));
  REQUIRE(spans.size() == 2);
  nlohmann::json client, server;
  for (const auto& s : spans) {
    (s["kind"] == kClient ? client : server) = s;
  }
  REQUIRE(client["kind"] == kClient);
  REQUIRE(server["kind"] == kServer);
  // One trace, chained: app -> client span (node 1) -> server span (node 2) -> app's parent.
  CHECK(client["traceId"] == kTraceId);
  CHECK(server["traceId"] == kTraceId);
  CHECK(client["parentSpanId"] == kAppSpan);
  CHECK(server["parentSpanId"] == client["spanId"]);
  CHECK(server["spanId"] == app_parent->spanIdHex());
  CHECK(client["spanId"] != kAppSpan);
  CHECK(client["scope"] == "ferry-agent");
  CHECK(std::stoull(client["end"].get<std::string>()) >=
        std::stoull(client["start"].get<std::string>()));
  CHECK(std::stoull(client["start"].get<std::string>()) > 0);

  const std::string service = "front.default.svc.cluster.local";
  const std::map<std::string, nlohmann::json> both = {
      {"source.workload", "n1p1"},
      {"source.namespace", "default"},
      {"source.principal", "spiffe://cluster.local/ns/default/sa/sa-n1p1"},
      {"destination.workload", "n2p1"},
      {"destination.namespace", "default"},
      {"destination.service", service},
      {"http.method", "POST"},
      {"http.path", "/orders"},
      {"http.protocol", "http"},
      {"http.status_code", 200},
      {"request_size", 7},
      {"response_flags", "-"},
      {"component", "proxy"},
  };
  for (const auto& [key, value] : both) {
    INFO(key);
    CHECK(client["attributes"][key] == value);
    CHECK(server["attributes"][key] == value);
  }
  // The source sees the request as the app sent it; the destination reports the path its
  // filter matched policy on (normalized, without the query), as its access log does.
  CHECK(client["attributes"]["http.url"] == absl::StrCat("http://", kFrontVip, "/orders?id=1"));
  CHECK(server["attributes"]["http.url"] == absl::StrCat("http://", kFrontVip, "/orders"));
  CHECK(client["attributes"]["upstream_cluster"] == "outbound|80||" + service);
  CHECK(server["attributes"]["upstream_cluster"] == absl::StrCat("inbound|", kAppPort, "||"));
  CHECK(client["attributes"]["istio.canonical_service"] == "n1p1");
  CHECK(server["attributes"]["istio.canonical_service"] == "n2p1");
  CHECK(server["attributes"]["destination.principal"] ==
        "spiffe://cluster.local/ns/default/sa/sa-n2p1");
  CHECK(server["attributes"]["connection.mtls"] == true);
  CHECK(client["name"] == service + ":80/*");
  CHECK(client["resource"]["service.name"] == "n1p1.default");
  CHECK(server["resource"]["service.name"] == "n2p1.default");
  std::filesystem::remove_all(dir);
}

TEST_CASE("a collector that never answers costs a bounded queue, requests are served",
          "[privileged][e2e][telemetry]") {
  FERRY_REQUIRE_ROOT();
  // Listens and never accepts: an export connects (the backlog) and waits for its 5 s timeout.
  const int stuck = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(stuck, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(::listen(stuck, 16) == 0);
  socklen_t len = sizeof(a);
  ::getsockname(stuck, reinterpret_cast<sockaddr*>(&a), &len);
  constexpr int kQueue = 2;
  constexpr int kRequests = 20;
  MeshOptions options;
  // Ratio 1: every new trace is sampled, by the source agent, and the destination follows it.
  options.extra_agent_flags = {
      absl::StrCat("--trace-endpoint=http://127.0.0.1:", ntohs(a.sin_port), "/v1/traces"),
      "--trace-sampling=1", absl::StrCat("--trace-queue-spans=", kQueue), "--trace-batch-spans=1"};
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  REQUIRE_OK(m.applyManifest("front.yaml", routedFront()));
  REQUIRE_OK(m.startApp(m.pod(2, 1), {"http-server", absl::StrCat("--port=", kAppPort)}, kAppPort));
  std::vector<std::string> paths;
  for (int i = 0; i < kRequests; ++i) {
    paths.push_back(absl::StrCat("/r", i));
  }
  auto out = m.run(m.pod(1, 1), {"/usr/bin/python3", meshAppsScript(), "http-post",
                                 absl::StrCat("--host=", kFrontVip), "--port=80", "--bytes=1",
                                 "--text=" + absl::StrJoin(paths, " ")});
  REQUIRE_OK(out);
  std::vector<std::string> lines = absl::StrSplit(*out, '\n', absl::SkipEmpty());
  REQUIRE(lines.size() == kRequests);
  for (const std::string& line : lines) {
    INFO(line);
    REQUIRE(line.starts_with("200 "));
    // The app's parent span is sampled: the source agent started the trace and sampled it.
    CHECK(line.find("-01 bytes=1") != std::string::npos);
  }
  for (int node : {1, 2}) {
    // The first span went to the stuck export; the queue holds kQueue; the rest were dropped.
    std::string text = scrapeUntil(m.metricsPort(node), "ferry_trace_spans_total",
                                   {{"outcome", "dropped"}}, kRequests - 1 - kQueue);
    INFO("node " << node << ": " << text.substr(std::min(text.find("ferry_trace"), text.size())));
    CHECK(sampleValue(text, "ferry_trace_spans_total", {{"outcome", "dropped"}}) ==
          kRequests - 1 - kQueue);
    CHECK(sampleValue(text, "ferry_trace_spans_total", {{"outcome", "exported"}}) == 0);
    CHECK(sampleValue(text, "ferry_trace_queue_spans", {}) <= kQueue);
  }
  ::close(stuck);
}

}  // namespace
}  // namespace ferry::e2e
