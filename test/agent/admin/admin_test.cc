// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The agent's operator surface, in process: readiness flips exactly when the capture attaches,
// the first configuration arrives and an enrolled pod's certificate appears; /config_dump shows
// certificate metadata and never key material; the log level changes at run time.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "enroll/client.h"
#include "fakes/ca/fake_ca.h"
#include "harness/cluster.h"
#include "log/log.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::agent {
namespace {

namespace fs = std::filesystem;

struct HttpReply {
  int code = 0;
  std::string body;
};

// One HTTP/1.0 exchange with a server on loopback.
HttpReply http(uint16_t port, const std::string& method, const std::string& target) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return {};
  }
  std::string req = method + " " + target + " HTTP/1.0\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  HttpReply r;
  if (out.rfind("HTTP/1.0 ", 0) == 0) {
    r.code = std::atoi(out.c_str() + 9);
  }
  auto body = out.find("\r\n\r\n");
  if (body != std::string::npos) {
    r.body = out.substr(body + 4);
  }
  return r;
}

class FakeCapture : public Capture {
 public:
  absl::Status addPod(const enroll::PodInfo&, const Netns&, int) override {
    return absl::OkStatus();
  }
  void removePod(const enroll::PodInfo&) override {}
  absl::StatusOr<SocketAddress> originalDestination(int, const enroll::PodInfo&) override {
    return absl::UnimplementedError("fake");
  }
  bool attached() const override { return attached_->load(); }
  std::map<std::string, uint64_t> kernelCounters() const override { return {{"spliced", 7}}; }

  std::shared_ptr<std::atomic<bool>> attached_ = std::make_shared<std::atomic<bool>>(false);
};

// Delivers snapshots only when the test says so (a controller that has not answered yet).
class ManualStateSource : public StateSource {
 public:
  explicit ManualStateSource(std::shared_ptr<Callback> slot) : slot_(std::move(slot)) {}
  absl::Status start(Callback on_update) override {
    *slot_ = std::move(on_update);
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<Callback> slot_;
};

struct Fixture {
  std::unique_ptr<harness::Cluster> cluster;
  fs::path dir;
  fakes::FakeCa ca;
  std::shared_ptr<std::atomic<bool>> attached;
  std::shared_ptr<StateSource::Callback> deliver = std::make_shared<StateSource::Callback>();
  std::unique_ptr<Agent> agent;

  Fixture() {
    auto c = harness::Cluster::create({.nodes = 1, .pods_per_node = 1});
    REQUIRE_OK(c);
    cluster = *std::move(c);
    dir = fs::path(cluster->scratchDir()) / "admin-test";
    fs::create_directories(dir / "certs");
    std::ofstream(dir / "certs" / "bundle.pem") << ca.rootPem();
    Config config;
    config.node_name = "node1";
    config.capture = "none";
    config.certs_dir = (dir / "certs").string();
    config.enroll_socket = (dir / "agent.sock").string();
    config.state_file = (dir / "pods.json").string();
    config.admin_port = 0;
    config.metrics_address = "127.0.0.1:0";
    config.readiness_address = "127.0.0.1";
    config.readiness_port = 0;
    config.workers = 1;
    AgentParts parts;
    auto capture = std::make_unique<FakeCapture>();
    attached = capture->attached_;
    parts.capture = std::move(capture);
    parts.state = std::make_unique<ManualStateSource>(deliver);
    parts.certs = std::make_unique<FileCertificateStore>(config.certs_dir, "cluster.local");
    auto a = Agent::start(config, std::move(parts));
    REQUIRE_OK(a);
    agent = *std::move(a);
  }

  HttpReply ready() { return http(agent->readinessPort(), "GET", "/healthz/ready"); }
  const harness::Pod& pod() const { return cluster->pod(1, 1); }
  enroll::PodInfo podInfo() const {
    return {"uid-" + pod().name,     pod().name, "default", "sa-web", pod().netns_path,
            {pod().ipv4, pod().ipv6}};
  }
  void writeCert() {
    fakes::IssuedCert cert = ca.issue("default", "sa-web");
    std::ofstream(dir / "certs" / "default.sa-web.crt") << cert.cert_pem;
    std::ofstream(dir / "certs" / "default.sa-web.key") << cert.key_pem;
  }
};

TEST_CASE("readiness flips on capture attached, first config and certificates present",
          "[privileged][admin]") {
  FERRY_REQUIRE_ROOT();
  Fixture f;
  HttpReply r = f.ready();
  CHECK(r.code == 503);
  CHECK(r.body.find("eBPF capture not attached") != std::string::npos);
  CHECK(r.body.find("no configuration applied yet") != std::string::npos);

  f.attached->store(true);
  r = f.ready();
  CHECK(r.code == 503);
  CHECK(r.body.find("eBPF capture") == std::string::npos);
  CHECK(r.body.find("no configuration applied yet") != std::string::npos);

  model::NodeSnapshot snap;
  snap.version = 3;
  snap.node = "node1";
  (*f.deliver)(snap);
  CHECK(f.ready().code == 200);
  CHECK(http(f.agent->adminPort(), "GET", "/ready").code == 200);

  // A pod without a certificate makes the node unready until the certificate is there.
  REQUIRE_OK(enroll::addPod(f.agent->config().enroll_socket, f.podInfo()));
  r = f.ready();
  CHECK(r.code == 503);
  CHECK(r.body.find("no certificate for default/sa-web") != std::string::npos);
  f.writeCert();
  CHECK(f.ready().code == 200);

  f.attached->store(false);
  CHECK(f.ready().code == 503);
  f.attached->store(true);
  f.agent->drain(std::chrono::milliseconds(0));
  CHECK(f.ready().code == 0);  // the probe closes with the agent
}

TEST_CASE("config_dump shows state and certificate metadata but never keys",
          "[privileged][admin]") {
  FERRY_REQUIRE_ROOT();
  Fixture f;
  f.attached->store(true);
  f.writeCert();
  model::NodeSnapshot snap;
  snap.version = 9;
  snap.node = "node1";
  model::Workload w;
  w.uid = "uid-" + f.pod().name;
  w.key = {"default", f.pod().name};
  w.service_account = "sa-web";
  w.node = "node1";
  w.ips = {f.pod().ipv4};
  snap.workloads.push_back(w);
  model::AuthorizationPolicy p;
  p.key = {"default", "allow-web"};
  snap.policies.push_back(p);
  (*f.deliver)(snap);
  REQUIRE_OK(enroll::addPod(f.agent->config().enroll_socket, f.podInfo()));

  HttpReply r = http(f.agent->adminPort(), "GET", "/config_dump");
  REQUIRE(r.code == 200);
  auto j = nlohmann::json::parse(r.body);
  CHECK(j["config"]["version"] == 9);
  CHECK(j["config"]["applied"] == true);
  REQUIRE(j["workloads"].size() == 1);
  CHECK(j["workloads"][0]["uid"] == w.uid);
  REQUIRE(j["policies"].size() == 1);
  CHECK(j["policies"][0]["key"]["name"] == "allow-web");
  REQUIRE(j["certificates"].size() == 1);
  CHECK(j["certificates"][0]["spiffe_id"] == "spiffe://cluster.local/ns/default/sa/sa-web");
  CHECK(j["certificates"][0]["pods"][0] == f.pod().name);
  CHECK(j["certificates"][0]["expires_in_seconds"].get<int64_t>() > 3600);
  CHECK(j["ready"] == true);
  // No key material, in any encoding the store could leak it.
  CHECK(r.body.find("PRIVATE KEY") == std::string::npos);
  std::ifstream key_file(f.dir / "certs" / "default.sa-web.key");
  std::string key_text((std::istreambuf_iterator<char>(key_file)), {});
  std::string key_body = key_text.substr(key_text.find('\n') + 1, 40);
  REQUIRE(key_body.size() == 40);
  CHECK(r.body.find(key_body) == std::string::npos);

  // The same facts are metrics.
  std::string metrics = http(f.agent->metricsPort(), "GET", "/metrics").body;
  CHECK(metrics.find("ferry_config_version 9") != std::string::npos);
  CHECK(metrics.find("ferry_certificate_expiration_timestamp_seconds{identity=\"spiffe://"
                     "cluster.local/ns/default/sa/sa-web\"}") != std::string::npos);
  CHECK(metrics.find("ferry_bpf_events_total{event=\"spliced\"} 7") != std::string::npos);
  CHECK(metrics.find("ferry_ready 1") != std::string::npos);
  CHECK(metrics.find("ferry_enrolled_pods 1") != std::string::npos);
}

TEST_CASE("the log level changes at run time through POST /logging", "[privileged][admin]") {
  FERRY_REQUIRE_ROOT();
  Fixture f;
  setLogLevel(LogLevel::kInfo);
  uint16_t port = f.agent->adminPort();
  CHECK(nlohmann::json::parse(http(port, "GET", "/logging").body)["level"] == "info");
  HttpReply r = http(port, "POST", "/logging?level=debug");
  CHECK(r.code == 200);
  CHECK(nlohmann::json::parse(r.body)["level"] == "debug");
  CHECK(logLevel() == LogLevel::kDebug);
  CHECK(http(port, "POST", "/logging?level=loud").code == 400);
  CHECK(http(port, "POST", "/logging").code == 400);
  CHECK(logLevel() == LogLevel::kDebug);
  CHECK(http(port, "POST", "/config_dump").code == 405);
  CHECK(http(port, "GET", "/nothing").code == 404);
  setLogLevel(LogLevel::kInfo);
}

}  // namespace
}  // namespace ferry::agent
