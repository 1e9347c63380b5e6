// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/telemetry/http_telemetry.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

#include "agent/telemetry/telemetry_spans.h"
#include "eventually.h"
#include "metrics/scrape.h"
#include "status_testing.h"

namespace ferry::agent {
namespace {

using metrics::testing::countSamples;
using metrics::testing::httpGet;
using metrics::testing::sampleValue;

constexpr char kIncoming[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kCallerSpan[] = "00f067aa0ba902b7";

// A pod "<name>-<suffix>" of Deployment <name>, service account <name>, label app=<name>.
model::Workload deploymentPod(const std::string& name, const std::string& suffix,
                              const std::string& ip) {
  model::Workload w;
  w.uid = "u-" + name;
  w.key = {"default", name + "-" + suffix};
  w.workload_name = name;
  w.service_account = name;
  w.ips = {ip};
  w.labels = {{"app", name}};
  return w;
}

// A Service selecting app=web with one port, and its endpoint: the web pod.
void addServiceOfWeb(model::NodeSnapshot& s, const std::string& name, model::ServicePort port) {
  model::Service svc;
  svc.key = {"default", name};
  svc.selector = {{"app", "web"}};
  svc.ports.push_back(std::move(port));
  s.services.push_back(svc);
  model::ServiceEndpoints eps;
  eps.service = svc.key;
  eps.endpoints.push_back({"10.244.2.11", "u-web", "node2", "", true});
  s.endpoints.push_back(eps);
}

model::NodeSnapshot snapshot() {
  model::NodeSnapshot s;
  model::Workload web = deploymentPod("web", "5c4b", "10.244.2.11");
  web.labels["version"] = "v1";
  s.workloads = {deploymentPod("client", "7d9f", "10.244.1.11"), web};
  // A second Service in front of the same pod, listed first, on another port: inbound reports
  // name the Service whose port leads to the one the request came in on.
  addServiceOfWeb(s, "web-metrics", {"http-metrics", 9090, 0, "", "TCP", ""});
  addServiceOfWeb(s, "web", {"http", 80, 8080, "", "TCP", ""});
  return s;
}

LocalPod webPod() {
  LocalPod pod;
  pod.info = {.uid = "u-web",
              .name = "web-5c4b",
              .ns = "default",
              .service_account = "web",
              .ips = {"10.244.2.11"}};
  return pod;
}

const InboundPeer kPeer{"spiffe://cluster.local/ns/default/sa/client", "10.244.1.11", "10.244.2.11",
                        8080};

http::RequestRecord allowedRecord() {
  http::RequestRecord r;
  r.method = "POST";
  r.path = "/orders";
  r.authority = "web";
  r.authorized = true;
  r.allowed = true;
  r.policy = "default/allow-client";
  r.rule = "1";
  r.reason = "allowed by default/allow-client rule 1";
  r.status = 201;
  r.request_body_bytes = 12;
  r.response_body_bytes = 34;
  r.duration = std::chrono::milliseconds(5);
  r.traceparent = kIncoming;
  r.forwarded_traceparent = forwardedTrace(kIncoming).format();
  return r;
}

// allowedRecord() denied by a policy, as gRPC, answered here and so never forwarded.
http::RequestRecord deniedGrpcRecord() {
  http::RequestRecord r = allowedRecord();
  r.allowed = false;
  r.policy = "default/deny-orders";
  r.rule = "0";
  r.status = 403;
  r.local_reply = true;
  r.grpc = true;
  r.grpc_status = 7;
  r.forwarded_traceparent.clear();
  return r;
}

// Refused as malformed before policy ran: no policy, no trace, no method.
http::RequestRecord malformedRecord() {
  http::RequestRecord r;
  r.status = 400;
  r.local_reply = true;
  return r;
}

TEST_CASE("an allowed request reports peers, the L7 decision, sizes and the forwarded span",
          "[telemetry]") {
  WorkloadState state(snapshot());
  http::RequestRecord record = allowedRecord();
  HttpRequestInfo r = httpRequestInfo(state, webPod(), kPeer, record);
  CHECK(r.connection.reporter == TelemetryReporter::kDestination);
  CHECK(r.connection.source.workload == "client");
  CHECK(r.connection.source.principal == "spiffe://cluster.local/ns/default/sa/client");
  CHECK(r.connection.source.app == "client");
  CHECK(r.connection.destination.workload == "web");
  CHECK(r.connection.destination.principal == "spiffe://cluster.local/ns/default/sa/web");
  CHECK(r.connection.destination.version == "v1");
  CHECK(r.connection.destination.address == "10.244.2.11:8080");
  CHECK(r.connection.destination_service == "web.default.svc.cluster.local");
  CHECK(r.connection.mtls);
  CHECK(r.connection.policy.allowed);
  CHECK(r.connection.policy.action == PolicyOutcome::Action::kAllow);
  CHECK(r.connection.policy.policy == "default/allow-client");
  CHECK(r.connection.policy.rule == 1);
  CHECK(r.policy_evaluated);
  CHECK(r.response_flags.empty());
  CHECK(r.method == "POST");
  CHECK(r.path == "/orders");
  CHECK(r.protocol == "http");
  CHECK(r.response_code == 201);
  CHECK(r.grpc_status == -1);
  CHECK(r.request_bytes == 12);
  CHECK(r.response_bytes == 34);
  CHECK(r.duration == absl::Milliseconds(5));
  auto forwarded = trace::parseTraceparent(record.forwarded_traceparent);
  REQUIRE_OK(forwarded);
  CHECK(r.trace_id == kTraceId);
  CHECK(r.span_id == forwarded->spanIdHex());  // the span the app saw as its parent
  CHECK(r.span_id != kCallerSpan);
  CHECK(r.parent_span_id == kCallerSpan);
}

TEST_CASE("denied, malformed and untraced requests still get trace ids and the right outcome",
          "[telemetry]") {
  WorkloadState state(snapshot());
  LocalPod pod = webPod();

  http::RequestRecord denied = deniedGrpcRecord();
  HttpRequestInfo d = httpRequestInfo(state, pod, kPeer, denied);
  CHECK_FALSE(d.connection.policy.allowed);
  CHECK(d.connection.policy.action == PolicyOutcome::Action::kDeny);
  CHECK(d.connection.policy.rule == 0);
  CHECK(d.protocol == "grpc");
  CHECK(d.grpc_status == 7);
  CHECK(d.trace_id == kTraceId);  // the caller's trace goes on in the denial's span
  CHECK(d.span_id.size() == 16);
  CHECK(d.span_id != kCallerSpan);
  CHECK(d.parent_span_id == kCallerSpan);

  http::RequestRecord malformed = malformedRecord();
  HttpRequestInfo m = httpRequestInfo(state, pod, kPeer, malformed);
  CHECK_FALSE(m.policy_evaluated);
  CHECK(m.connection.policy.allowed);
  CHECK(m.connection.policy.action == PolicyOutcome::Action::kNone);
  CHECK(m.response_flags == "DPE");
  CHECK(m.trace_id.size() == 32);  // a new trace
  CHECK(m.parent_span_id.empty());

  http::RequestRecord lost = allowedRecord();
  lost.status = 502;
  lost.local_reply = true;
  CHECK(httpRequestInfo(state, pod, kPeer, lost).response_flags == "UC");

  // Plaintext peer, unusable incoming traceparent: we start the trace.
  http::RequestRecord plain = allowedRecord();
  plain.traceparent = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
  plain.forwarded_traceparent = forwardedTrace(plain.traceparent).format();
  HttpRequestInfo p =
      httpRequestInfo(state, pod, InboundPeer{"", "10.244.1.11", "10.244.2.11", 8080}, plain);
  CHECK_FALSE(p.connection.mtls);
  CHECK(p.connection.source.principal.empty());
  CHECK(p.connection.source.workload == "client");
  CHECK(p.trace_id != "00000000000000000000000000000000");
  CHECK(p.trace_id.size() == 32);
  CHECK(p.parent_span_id.empty());
}

// Every field of two reports of the same request. Trace ids that a report draws at random
// (a new trace; the span of a request not forwarded) are compared by shape only.
void checkSameReport(const HttpRequestInfo& a, const HttpRequestInfo& b,
                     const http::RequestRecord& record) {
  auto connection = [](const HttpRequestInfo& r) {
    return std::tie(r.connection.source.workload, r.connection.destination.address,
                    r.connection.destination_service, r.upstream_cluster);
  };
  auto decision = [](const HttpRequestInfo& r) {
    const PolicyOutcome& p = r.connection.policy;
    return std::tie(p.allowed, p.action, p.policy, p.rule, r.policy_evaluated, r.response_flags);
  };
  auto request = [](const HttpRequestInfo& r) {
    return std::tie(r.method, r.path, r.authority, r.protocol, r.response_code, r.grpc_status);
  };
  auto sizes = [](const HttpRequestInfo& r) {
    return std::tie(r.request_bytes, r.response_bytes, r.duration, r.parent_span_id);
  };
  CHECK(connection(a) == connection(b));
  CHECK(decision(a) == decision(b));
  CHECK(request(a) == request(b));
  CHECK(sizes(a) == sizes(b));
  const bool continued = trace::parseTraceparent(record.traceparent).ok();
  CHECK((a.trace_id == b.trace_id) == (continued || !record.forwarded_traceparent.empty()));
  CHECK(a.trace_id.size() == 32);
  if (!record.forwarded_traceparent.empty()) {
    CHECK(a.span_id == b.span_id);
    CHECK(a.trace_sampled == b.trace_sampled);
  }
  CHECK(a.span_id.size() == 16);
}

TEST_CASE("a report filled again for another request is the report built afresh for it",
          "[telemetry]") {
  WorkloadState state(snapshot());
  const ConnectionInfo connection = inboundHttpConnection(state, webPod(), kPeer);

  http::RequestRecord allowed = allowedRecord();
  allowed.path = "/orders/with/a/path/longer/than/the/string/buffer/of/the/next/one";
  http::RequestRecord limited = allowedRecord();
  limited.allowed = false;
  limited.response_flags = "RL";
  limited.status = 429;
  const std::vector<std::pair<std::string, http::RequestRecord>> records = {
      {"allowed", allowed},
      {"denied", deniedGrpcRecord()},
      {"limited", limited},
      {"malformed", malformedRecord()}};

  for (const auto& [first_name, first] : records) {
    for (const auto& [second_name, second] : records) {
      INFO(first_name << " then " << second_name);
      HttpRequestInfo reused;
      reused.connection = connection;
      fillHttpRequestInfo(first, {}, reused);
      fillHttpRequestInfo(second, {}, reused);
      checkSameReport(reused, httpRequestInfo(connection, second), second);
    }
  }
}

TEST_CASE("the trace hook forwards a child span and drops tracestate of a bad traceparent",
          "[telemetry]") {
  auto hook = traceHeaderHook();
  auto run = [&](std::vector<http::Header> headers) {
    http::RequestView view;
    view.headers = headers;
    http::HeaderEdits edits;
    hook(view, edits);
    return edits;
  };
  http::HeaderEdits child = run({{"traceparent", kIncoming}, {"tracestate", "vendor=1"}});
  REQUIRE(child.additions().size() == 1);
  CHECK(child.additions()[0].first == "traceparent");
  CHECK(child.removes("traceparent"));
  CHECK_FALSE(child.removes("tracestate"));
  auto forwarded = trace::parseTraceparent(child.additions()[0].second);
  REQUIRE_OK(forwarded);
  CHECK(forwarded->traceIdHex() == kTraceId);
  CHECK(forwarded->spanIdHex() != kCallerSpan);
  CHECK(forwarded->sampled());  // the caller's flags go on

  http::HeaderEdits fresh = run({{"traceparent", "garbage"}, {"tracestate", "vendor=1"}});
  CHECK(fresh.removes("tracestate"));
  REQUIRE(fresh.additions().size() == 1);
  auto generated = trace::parseTraceparent(fresh.additions()[0].second);
  REQUIRE_OK(generated);
  CHECK_FALSE(generated->sampled());

  http::HeaderEdits none = run({});
  CHECK_FALSE(none.removes("tracestate"));
  REQUIRE(none.additions().size() == 1);
  CHECK(trace::parseTraceparent(none.additions()[0].second).ok());
}

TEST_CASE("request reports count by code, flags and decisions, not for malformed requests",
          "[telemetry]") {
  auto sink = std::make_shared<accesslog::MemorySink>();
  auto t = Telemetry::create({.metrics_address = "127.0.0.1:0"}, sink);
  REQUIRE_OK(t);
  WorkloadState state(snapshot());
  LocalPod pod = webPod();
  (*t)->recordRequest(httpRequestInfo(state, pod, kPeer, allowedRecord()));
  http::RequestRecord malformed;
  malformed.status = 400;
  malformed.local_reply = true;
  (*t)->recordRequest(httpRequestInfo(state, pod, kPeer, malformed));
  std::string text = httpGet(absl::StrCat("http://127.0.0.1:", (*t)->metricsPort(), "/metrics"));
  CHECK(sampleValue(text, "istio_requests_total",
                    {{"response_code", "201"},
                     {"response_flags", "-"},
                     {"destination_service", "web.default.svc.cluster.local"},
                     {"source_workload", "client"}}) == 1);
  CHECK(sampleValue(text, "istio_requests_total",
                    {{"response_code", "400"}, {"response_flags", "DPE"}}) == 1);
  CHECK(sampleValue(text, "istio_request_bytes_sum", {{"response_code", "201"}}) == 12);
  CHECK(sampleValue(text, "istio_response_bytes_sum", {{"response_code", "201"}}) == 34);
  // One decision: the malformed request never reached policy.
  CHECK(countSamples(text, "ferry_policy_decisions_total") == 1);
  CHECK(sampleValue(
            text, "ferry_policy_decisions_total",
            {{"policy", "default/allow-client"}, {"action", "ALLOW"}, {"decision", "allow"}}) == 1);
  REQUIRE(sink->lines().size() == 2);
  auto j = nlohmann::json::parse(sink->lines()[0]);
  CHECK(j["trace_id"] == kTraceId);
  CHECK(j["parent_span_id"] == kCallerSpan);
  CHECK(j["policy_rule"] == "1");
  CHECK(j["bytes_received"] == 12);
  CHECK(j["bytes_sent"] == 34);
  auto bad = nlohmann::json::parse(sink->lines()[1]);
  CHECK(bad["response_flags"] == "DPE");
  CHECK(bad["policy_decision"].is_null());
}

TEST_CASE("sampling: a valid traceparent's flag decides, new traces follow the ratio",
          "[telemetry]") {
  constexpr char kUnsampled[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
  struct Row {
    std::string description, incoming;
    double ratio;
    bool sampled, same_trace;
  };
  const std::vector<Row> rows = {
      {"sampled parent, ratio 0", kIncoming, 0.0, true, true},
      {"unsampled parent, ratio 1", kUnsampled, 1.0, false, true},
      {"no parent, ratio 1", "", 1.0, true, false},
      {"no parent, ratio 0", "", 0.0, false, false},
      {"unusable parent, ratio 1: a new sampled trace", "garbage", 1.0, true, false},
  };
  for (const Row& row : rows) {
    INFO(row.description);
    trace::TraceContext ours = forwardedTrace(row.incoming, trace::Sampler(row.ratio));
    CHECK(ours.sampled() == row.sampled);
    CHECK((ours.traceIdHex() == kTraceId) == row.same_trace);
    // The hook forwards the same decision.
    http::RequestView view;
    std::vector<http::Header> headers;
    if (!row.incoming.empty()) {
      headers.push_back({"traceparent", row.incoming});
    }
    view.headers = headers;
    http::HeaderEdits edits;
    traceHeaderHook(trace::Sampler(row.ratio))(view, edits);
    REQUIRE(edits.additions().size() == 1);
    auto forwarded = trace::parseTraceparent(edits.additions()[0].second);
    REQUIRE_OK(forwarded);
    CHECK(forwarded->sampled() == row.sampled);
  }
}

TEST_CASE("a request's span: server kind, parent, Istio-like attributes and resource",
          "[telemetry]") {
  WorkloadState state(snapshot());
  http::RequestRecord record = allowedRecord();
  HttpRequestInfo r = httpRequestInfo(state, webPod(), kPeer, record);
  REQUIRE(r.trace_sampled);
  CHECK(r.upstream_cluster == "inbound|8080||");
  trace::Span s = requestSpan(r, "Kubernetes");
  CHECK(s.kind == trace::SpanKind::kServer);
  auto forwarded = trace::parseTraceparent(record.forwarded_traceparent);
  REQUIRE_OK(forwarded);
  CHECK(s.trace_id == forwarded->trace_id);
  CHECK(s.span_id == forwarded->span_id);  // the span the app sees as its parent
  auto incoming = trace::parseTraceparent(kIncoming);
  CHECK(s.parent_span_id == incoming->span_id);
  CHECK(s.flags == trace::kSampledFlag);
  CHECK(s.name == "web.default.svc.cluster.local:80/*");
  CHECK(s.end_unix_nanos - s.start_unix_nanos == 5'000'000);
  CHECK_FALSE(s.error);
  std::map<std::string, trace::AttributeValue> a(s.attributes.begin(), s.attributes.end());
  const std::map<std::string, trace::AttributeValue> expected = {
      {"source.workload", std::string("client")},
      {"source.namespace", std::string("default")},
      {"source.principal", std::string("spiffe://cluster.local/ns/default/sa/client")},
      {"destination.workload", std::string("web")},
      {"destination.namespace", std::string("default")},
      {"destination.service", std::string("web.default.svc.cluster.local")},
      {"istio.canonical_service", std::string("web")},
      {"istio.canonical_revision", std::string("v1")},
      {"istio.namespace", std::string("default")},
      {"http.method", std::string("POST")},
      {"http.url", std::string("http://web/orders")},
      {"http.path", std::string("/orders")},
      {"http.protocol", std::string("http")},
      {"http.status_code", int64_t{201}},
      {"request_size", int64_t{12}},
      {"response_size", int64_t{34}},
      {"response_flags", std::string("-")},
      {"upstream_cluster", std::string("inbound|8080||")},
      {"connection.mtls", true},
  };
  for (const auto& [key, value] : expected) {
    INFO(key);
    REQUIRE(a.count(key) == 1);
    CHECK(a[key] == value);
  }
  std::map<std::string, trace::AttributeValue> resource(s.resource.begin(), s.resource.end());
  CHECK(resource["service.name"] == trace::AttributeValue(std::string("web.default")));
  CHECK(resource["k8s.namespace.name"] == trace::AttributeValue(std::string("default")));

  http::RequestRecord denied = allowedRecord();
  denied.allowed = false;
  denied.status = 503;
  denied.forwarded_traceparent.clear();
  trace::Span d = requestSpan(httpRequestInfo(state, webPod(), kPeer, denied), "Kubernetes");
  std::map<std::string, trace::AttributeValue> da(d.attributes.begin(), d.attributes.end());
  CHECK(da["response_flags"] == trace::AttributeValue(std::string("DENY")));
  CHECK(d.error);
  CHECK(d.parent_span_id == incoming->span_id);
}

TEST_CASE("only sampled requests become spans, and export outcomes are ferry_ metrics",
          "[telemetry]") {
  // A collector that is not there: every export fails, and is counted.
  TelemetryConfig config{.metrics_address = "127.0.0.1:0",
                         .tracing = {.endpoint = "http://127.0.0.1:1/v1/traces",
                                     .max_batch_spans = 1,
                                     .timeout = absl::Seconds(2)}};
  auto t = Telemetry::create(config, std::make_shared<accesslog::MemorySink>());
  REQUIRE_OK(t);
  REQUIRE((*t)->spanExporter() != nullptr);
  CHECK((*t)->sampler().ratio() == 0);
  WorkloadState state(snapshot());
  http::RequestRecord sampled = allowedRecord();
  http::RequestRecord unsampled = allowedRecord();
  unsampled.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
  unsampled.forwarded_traceparent = forwardedTrace(unsampled.traceparent).format();
  (*t)->recordRequest(httpRequestInfo(state, webPod(), kPeer, unsampled));
  (*t)->recordRequest(httpRequestInfo(state, webPod(), kPeer, sampled));
  const std::string url = absl::StrCat("http://127.0.0.1:", (*t)->metricsPort(), "/metrics");
  double failed = 0;
  CHECK(ferry::testing::eventually(
      [&] {
        failed = sampleValue(httpGet(url), "ferry_trace_spans_total", {{"outcome", "failed"}})
                     .value_or(0);
        return failed >= 1;
      },
      std::chrono::seconds(10), "a failed span export"));
  CHECK(failed == 1);
  std::string text = httpGet(url);
  CHECK(sampleValue(text, "ferry_trace_spans_total", {{"outcome", "exported"}}) == 0);
  CHECK(sampleValue(text, "ferry_trace_spans_total", {{"outcome", "dropped"}}) == 0);
  CHECK(sampleValue(text, "ferry_trace_queue_spans", {}) == 0);
}

}  // namespace
}  // namespace ferry::agent
