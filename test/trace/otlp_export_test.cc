// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The OTLP span exporter (trace/span_exporter.h, trace/otlp.h): encoding read back with the
// protobuf classes, batching, the queue bound and drop counting, failures, the HTTP transport
// against a loopback receiver and against a closed port, and the sampler's decisions.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "eventually.h"
#include "status_testing.h"
#include "trace/otlp.h"
#include "trace/span_exporter.h"
#include "userspace/trace/otlp_trace.pb.h"

namespace ferry::trace {
namespace {

namespace pb = opentelemetry::proto::collector::trace::v1;

Span spanNumbered(int i, const std::string& workload = "a") {
  Span s;
  s.trace_id.fill(0x11);
  s.span_id.fill(static_cast<uint8_t>(i));
  s.name = "span-" + std::to_string(i);
  s.resource = {{"service.name", std::string(workload + ".default")}};
  return s;
}

pb::ExportTraceServiceRequest decode(const std::string& body) {
  pb::ExportTraceServiceRequest r;
  REQUIRE(r.ParseFromString(body));
  return r;
}

// Records what it is given; can hold every post until released, and can fail.
class FakeTransport : public Transport {
 public:
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> bodies;
    bool hold = false;
    bool fail = false;
    int posts_started = 0;
  };
  explicit FakeTransport(std::shared_ptr<Shared> s) : s_(std::move(s)) {}
  absl::Status post(const std::string& body) override {
    std::unique_lock<std::mutex> lock(s_->mu);
    ++s_->posts_started;
    s_->cv.notify_all();
    s_->cv.wait(lock, [&] { return !s_->hold; });
    if (s_->fail) {
      return absl::UnavailableError("collector away");
    }
    s_->bodies.push_back(body);
    s_->cv.notify_all();
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<Shared> s_;
};

// Bounded wait (10 s) for `done` under the shared lock.
template <typename F>
bool waitFor(FakeTransport::Shared& s, F done) {
  std::unique_lock<std::mutex> lock(s.mu);
  return s.cv.wait_for(lock, std::chrono::seconds(10), done);
}

// Bounded wait (10 s) until the exporter's counts satisfy `done`.
template <typename F>
bool waitCounts(const SpanExporter& e, F done) {
  return ferry::testing::eventually([&] { return done(e.counts()); }, std::chrono::seconds(10),
                                    "the exporter's counts");
}

ExporterConfig fakeConfig(size_t queue, size_t batch) {
  return {.endpoint = "http://127.0.0.1:1/v1/traces",
          .max_queue_spans = queue,
          .max_batch_spans = batch,
          .flush_interval = absl::Hours(1)};
}

TEST_CASE("otlp: encoding groups spans by resource and keeps ids, kind, times, attributes",
          "[trace]") {
  Span server = spanNumbered(1, "web");
  server.parent_span_id.fill(0x22);
  server.flags = kSampledFlag;
  server.kind = SpanKind::kServer;
  server.start_unix_nanos = 1'700'000'000'000'000'000;
  server.end_unix_nanos = 1'700'000'000'005'000'000;
  server.attributes = {{"http.method", std::string("GET")},
                       {"http.status_code", int64_t{503}},
                       {"istio.mesh", true}};
  server.error = true;
  Span client = spanNumbered(2, "client");
  client.kind = SpanKind::kClient;
  Span server2 = spanNumbered(3, "web");
  const std::vector<Span> spans = {server, client, server2};

  pb::ExportTraceServiceRequest r = decode(encodeOtlp(spans));
  REQUIRE(r.resource_spans_size() == 2);
  const auto& web = r.resource_spans(0);
  REQUIRE(web.resource().attributes(0).key() == "service.name");
  REQUIRE(web.resource().attributes(0).value().string_value() == "web.default");
  REQUIRE(web.scope_spans(0).scope().name() == kInstrumentationScope);
  REQUIRE(web.scope_spans(0).spans_size() == 2);
  const pb::Span& s = web.scope_spans(0).spans(0);
  REQUIRE(s.trace_id() == std::string(16, '\x11'));
  REQUIRE(s.span_id() == std::string(8, '\x01'));
  REQUIRE(s.parent_span_id() == std::string(8, '\x22'));
  REQUIRE(s.flags() == (0x01u | 0x100u | 0x200u));
  REQUIRE(s.kind() == pb::Span::SPAN_KIND_SERVER);
  REQUIRE(s.start_time_unix_nano() == 1'700'000'000'000'000'000u);
  REQUIRE(s.end_time_unix_nano() == 1'700'000'000'005'000'000u);
  REQUIRE(s.attributes_size() == 3);
  REQUIRE(s.attributes(0).value().string_value() == "GET");
  REQUIRE(s.attributes(1).value().int_value() == 503);
  REQUIRE(s.attributes(2).value().bool_value());
  REQUIRE(s.status().code() == pb::Status::STATUS_CODE_ERROR);
  REQUIRE(web.scope_spans(0).spans(1).name() == "span-3");
  const auto& cl = r.resource_spans(1);
  REQUIRE(cl.resource().attributes(0).value().string_value() == "client.default");
  REQUIRE(cl.scope_spans(0).spans(0).kind() == pb::Span::SPAN_KIND_CLIENT);
  REQUIRE(cl.scope_spans(0).spans(0).parent_span_id().empty());  // a root
  REQUIRE(cl.scope_spans(0).spans(0).flags() == 0x100u);
  REQUIRE(cl.scope_spans(0).spans(0).status().code() == pb::Status::STATUS_CODE_UNSET);
}

TEST_CASE("otlp exporter: full batches go at once, the rest on flush", "[trace]") {
  auto shared = std::make_shared<FakeTransport::Shared>();
  auto e = SpanExporter::create(fakeConfig(100, 3), std::make_unique<FakeTransport>(shared));
  REQUIRE_OK(e.status());
  for (int i = 0; i < 7; ++i) {
    REQUIRE((*e)->enqueue(spanNumbered(i)));
  }
  REQUIRE(waitFor(*shared, [&] { return shared->bodies.size() == 2; }));
  REQUIRE(waitCounts(**e, [](auto c) { return c.exported == 6 && c.queued == 1; }));
  (*e)->flush();
  REQUIRE(waitCounts(**e, [](auto c) { return c.exported == 7 && c.queued == 0; }));
  REQUIRE(shared->bodies.size() == 3);
  std::vector<std::string> names;
  for (const std::string& body : shared->bodies) {
    pb::ExportTraceServiceRequest r = decode(body);
    for (const pb::Span& s : r.resource_spans(0).scope_spans(0).spans()) {
      names.push_back(s.name());
    }
  }
  REQUIRE(names == std::vector<std::string>{"span-0", "span-1", "span-2", "span-3", "span-4",
                                            "span-5", "span-6"});
  REQUIRE(decode(shared->bodies[0]).resource_spans(0).scope_spans(0).spans_size() == 3);
  REQUIRE(decode(shared->bodies[2]).resource_spans(0).scope_spans(0).spans_size() == 1);
  auto c = (*e)->counts();
  REQUIRE(c.failed == 0);
  REQUIRE(c.dropped == 0);
}

TEST_CASE("otlp exporter: a partial batch goes when its interval is over", "[trace]") {
  auto shared = std::make_shared<FakeTransport::Shared>();
  ExporterConfig config = fakeConfig(100, 50);
  config.flush_interval = absl::Milliseconds(50);
  auto e = SpanExporter::create(config, std::make_unique<FakeTransport>(shared));
  REQUIRE_OK(e.status());
  // Twice, so that the second span comes while the thread sleeps with an empty queue.
  REQUIRE((*e)->enqueue(spanNumbered(1)));
  REQUIRE(waitFor(*shared, [&] { return shared->bodies.size() == 1; }));
  REQUIRE(waitCounts(**e, [](auto c) { return c.exported == 1 && c.queued == 0; }));
  REQUIRE((*e)->enqueue(spanNumbered(2)));
  REQUIRE(waitFor(*shared, [&] { return shared->bodies.size() == 2; }));
  REQUIRE(waitCounts(**e, [](auto c) { return c.exported == 2 && c.queued == 0; }));
}

TEST_CASE("otlp exporter: a stuck collector costs a bounded queue, and drops are counted",
          "[trace]") {
  auto shared = std::make_shared<FakeTransport::Shared>();
  shared->hold = true;
  auto e = SpanExporter::create(fakeConfig(5, 2), std::make_unique<FakeTransport>(shared));
  REQUIRE_OK(e.status());
  REQUIRE((*e)->enqueue(spanNumbered(0)));
  REQUIRE((*e)->enqueue(spanNumbered(1)));  // a full batch: the thread takes it and is held
  REQUIRE(waitFor(*shared, [&] { return shared->posts_started == 1; }));
  int accepted = 0;
  for (int i = 2; i < 20; ++i) {
    accepted += (*e)->enqueue(spanNumbered(i)) ? 1 : 0;
  }
  REQUIRE(accepted == 5);
  auto c = (*e)->counts();
  REQUIRE(c.queued == 5);
  REQUIRE(c.dropped == 13);
  {
    std::lock_guard<std::mutex> lock(shared->mu);
    shared->hold = false;
  }
  shared->cv.notify_all();
  (*e)->flush();
  REQUIRE(waitCounts(**e, [](auto c) { return c.exported == 7 && c.queued == 0; }));
  REQUIRE((*e)->counts().dropped == 13);
}

TEST_CASE("otlp exporter: failed exports are counted and reported, not retried", "[trace]") {
  auto shared = std::make_shared<FakeTransport::Shared>();
  shared->fail = true;
  std::atomic<int> errors{0};
  ExporterConfig config = fakeConfig(100, 2);
  std::atomic<int> other_errors{0};  // Catch's macros are not for the exporter's thread
  config.on_error = [&](const absl::Status& s) {
    ++(s.message() == "collector away" ? errors : other_errors);
  };
  auto e = SpanExporter::create(config, std::make_unique<FakeTransport>(shared));
  REQUIRE_OK(e.status());
  for (int i = 0; i < 4; ++i) {
    REQUIRE((*e)->enqueue(spanNumbered(i)));
  }
  REQUIRE(waitCounts(**e, [](auto c) { return c.failed == 4 && c.queued == 0; }));
  REQUIRE((*e)->counts().exported == 0);
  REQUIRE(errors == 2);
  REQUIRE(other_errors == 0);
}

TEST_CASE("otlp exporter: stopping sends what is queued once", "[trace]") {
  auto shared = std::make_shared<FakeTransport::Shared>();
  {
    auto e = SpanExporter::create(fakeConfig(100, 10), std::make_unique<FakeTransport>(shared));
    REQUIRE_OK(e.status());
    REQUIRE((*e)->enqueue(spanNumbered(1)));
  }
  REQUIRE(shared->bodies.size() == 1);
}

TEST_CASE("otlp exporter: stopping after a failed export makes no last try", "[trace]") {
  auto shared = std::make_shared<FakeTransport::Shared>();
  shared->fail = true;
  {
    auto e = SpanExporter::create(fakeConfig(100, 2), std::make_unique<FakeTransport>(shared));
    REQUIRE_OK(e.status());
    REQUIRE((*e)->enqueue(spanNumbered(1)));
    REQUIRE((*e)->enqueue(spanNumbered(2)));  // a full batch: sent, fails
    REQUIRE(waitCounts(**e, [](auto c) { return c.failed == 2; }));
    REQUIRE((*e)->enqueue(spanNumbered(3)));  // waits for its interval (an hour)
  }
  std::lock_guard<std::mutex> lock(shared->mu);
  REQUIRE(shared->posts_started == 1);
}

TEST_CASE("otlp exporter: bad configurations are refused", "[trace]") {
  struct Row {
    std::string description;
    ExporterConfig config;
  };
  const std::vector<Row> rows = {
      {"no scheme", {.endpoint = "collector:4318"}},
      {"grpc scheme", {.endpoint = "grpc://collector:4317"}},
      {"empty queue", {.endpoint = "http://c:4318/v1/traces", .max_queue_spans = 0}},
      {"batch above queue",
       {.endpoint = "http://c:4318/v1/traces", .max_queue_spans = 4, .max_batch_spans = 5}},
      {"zero interval",
       {.endpoint = "http://c:4318/v1/traces", .flush_interval = absl::ZeroDuration()}},
  };
  for (const Row& row : rows) {
    INFO(row.description);
    REQUIRE(SpanExporter::create(row.config).status().code() == absl::StatusCode::kInvalidArgument);
  }
  REQUIRE(ExporterConfig{.endpoint = "https://c:4318/v1/traces"}.validate().ok());
}

// One-connection HTTP/1.1 receiver on loopback: answers `status` to each request and keeps the
// bodies (Content-Length framed, as libcurl sends a POST body of known size).
class Receiver {
 public:
  explicit Receiver(int status) : status_(status) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(::listen(fd_, 4) == 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~Receiver() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void serve() {
    int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) {
      return;
    }
    std::string in;
    char buf[4096];
    for (;;) {
      size_t head_end = in.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t at = in.find("Content-Length: ");
        size_t length = std::stoul(in.substr(at + 16));
        if (in.size() >= head_end + 4 + length) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            requests_.push_back(in.substr(0, head_end + 4 + length));
          }
          in.erase(0, head_end + 4 + length);
          std::string answer =
              "HTTP/1.1 " + std::to_string(status_) + " X\r\nContent-Length: 0\r\n\r\n";
          ::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
          continue;
        }
      }
      ssize_t n = ::recv(c, buf, sizeof(buf), 0);
      if (n <= 0) {
        break;
      }
      in.append(buf, static_cast<size_t>(n));
    }
    ::close(c);
  }

  int status_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

TEST_CASE("otlp http transport: POSTs protobuf to the path, reuses the connection, checks status",
          "[trace]") {
  Receiver ok(200);
  auto t = otlpHttpTransport(
      {.endpoint = "http://127.0.0.1:" + std::to_string(ok.port()) + "/v1/traces"});
  REQUIRE_OK(t.status());
  const std::vector<Span> spans = {spanNumbered(1)};
  REQUIRE_OK((*t)->post(encodeOtlp(spans)));
  REQUIRE_OK((*t)->post(encodeOtlp(spans)));
  auto got = ok.requests();  // one accepted connection: both arrived on it
  REQUIRE(got.size() == 2);
  REQUIRE(got[0].starts_with("POST /v1/traces HTTP/1.1\r\n"));
  REQUIRE(got[0].find("Content-Type: application/x-protobuf\r\n") != std::string::npos);
  const std::string body = got[0].substr(got[0].find("\r\n\r\n") + 4);
  REQUIRE(decode(body).resource_spans(0).scope_spans(0).spans(0).name() == "span-1");

  Receiver refusing(503);
  auto t503 = otlpHttpTransport(
      {.endpoint = "http://127.0.0.1:" + std::to_string(refusing.port()) + "/v1/traces"});
  REQUIRE_OK(t503.status());
  absl::Status s = (*t503)->post(encodeOtlp(spans));
  REQUIRE(s.code() == absl::StatusCode::kUnavailable);
  REQUIRE(s.message().find("HTTP status 503") != std::string::npos);
}

TEST_CASE("otlp http transport: a dead collector fails the export within the timeout", "[trace]") {
  // A port that was free a moment ago: nothing listens there.
  uint16_t port = 0;
  {
    Receiver r(200);
    port = r.port();
  }
  auto shared_errors = std::make_shared<std::atomic<int>>(0);
  auto e = SpanExporter::create(
      {.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/v1/traces",
       .max_queue_spans = 10,
       .max_batch_spans = 1,
       .timeout = absl::Seconds(2),
       .on_error = [shared_errors](const absl::Status&) { ++*shared_errors; }});
  REQUIRE_OK(e.status());
  REQUIRE((*e)->enqueue(spanNumbered(1)));
  REQUIRE(waitCounts(**e, [](auto c) { return c.failed == 1; }));
  REQUIRE(*shared_errors == 1);
}

TEST_CASE("sampler: parent-based, new traces by trace-id ratio", "[trace]") {
  std::array<uint8_t, 16> low{}, high{};
  high.fill(0xff);
  low[15] = 1;  // the last 8 bytes as a number: 1 (sampled by any ratio above 0)
  TraceContext sampled_parent{.flags = kSampledFlag};
  TraceContext unsampled_parent{.flags = 0};
  struct Row {
    std::string description;
    double ratio;
    const TraceContext* parent;
    std::array<uint8_t, 16> trace_id;
    bool expect;
  };
  const std::vector<Row> rows = {
      {"sampled parent wins over ratio 0", 0.0, &sampled_parent, low, true},
      {"unsampled parent wins over ratio 1", 1.0, &unsampled_parent, low, false},
      {"root, ratio 1", 1.0, nullptr, high, true},
      {"root, ratio 0", 0.0, nullptr, low, false},
      {"root, low id under ratio 0.5", 0.5, nullptr, low, true},
      {"root, high id over ratio 0.5", 0.5, nullptr, high, false},
  };
  for (const Row& row : rows) {
    INFO(row.description);
    REQUIRE(Sampler(row.ratio).sample(row.parent, row.trace_id) == row.expect);
  }
  // Over many random trace ids the share sampled is the ratio.
  int sampled = 0;
  for (int i = 0; i < 20000; ++i) {
    sampled += Sampler(0.25).sampleRoot(TraceContext::generate(false).trace_id) ? 1 : 0;
  }
  REQUIRE(sampled > 4500);
  REQUIRE(sampled < 5500);
}

}  // namespace
}  // namespace ferry::trace
