// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "suite/suite.h"

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "enroll/client.h"
#include "suite/peers.h"
#include "suite/procfs.h"

namespace ferry::bench {
namespace fs = std::filesystem;

namespace {

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// The agent reads HTTP only on ports a Service marks as HTTP (appProtocol or an "http-" port
// name); on any other port an ALLOW rule with HTTP fields can never match, and every request is
// refused. This Service makes n2p3's origin port an HTTP port.
constexpr char kL7Service[] = R"(apiVersion: v1
kind: Service
metadata:
  name: bench-l7
  namespace: default
spec:
  clusterIP: 10.96.0.31
  selector:
    app: n2p3
  ports:
  - name: http-bench
    port: 8080
    appProtocol: http
)";

// The L7 case's policy: only GETs on /bench/ from n1p1's identity reach n2p3; the HAProxy pair's
// server enforces the same ACL.
constexpr char kL7Policy[] = R"(apiVersion: security.ferry.dev/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: bench-l7
  namespace: default
spec:
  selector:
    matchLabels:
      app: n2p3
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sa-n1p1", "cluster.local/ns/default/sa/sa-n2p1"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/bench/*"]
)";

// The routed L7 case: an HTTPRoute on bench-l7 (the GAMMA pattern) makes n1p1's agent terminate
// each request to the Service's VIP and route it (routed outbound: match, backend pick, pooled
// upstream connection) before the L7 case's HBONE hop and policy at n2p3.
constexpr char kL7Route[] = R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: bench-l7
  namespace: default
spec:
  parentRefs:
  - {group: "", kind: Service, name: bench-l7, port: 8080}
  rules:
  - backendRefs:
    - {name: bench-l7, port: 8080}
)";
constexpr char kL7ServiceVip[] = "10.96.0.31";

// --l7-rate-limit=1: limits far above what the load generator offers, so every request is
// checked (total and identity bucket) and admitted.
constexpr char kL7RateLimit[] = R"(apiVersion: security.ferry.dev/v1alpha1
kind: RateLimitPolicy
metadata:
  name: bench-l7
  namespace: default
spec:
  selector:
    matchLabels:
      app: n2p3
  total:
    requestsPerSecond: 1000000
  identity:
    requestsPerSecond: 1000000
)";

}  // namespace

Suite::~Suite() {
  processes_.clear();
  mesh_.reset();
  if (malloc_probe_added_) {
    auto r = harness::runProcess({}, {"perf", "probe", "--del", kMallocProbe}, absl::Seconds(60));
    if (!r.ok() || r->exit_code != 0) {
      std::cerr << "bench: could not remove the uprobe " << kMallocProbe << " (perf probe --del)\n";
    }
  }
}

void Suite::note(const std::string& line) {
  std::cerr << "bench: " << line << "\n";
  meta_ << line << "\n";
  meta_.flush();
}

void Suite::row(int round, const Case& c, const std::string& metric, double value) {
  csv_ << options_.mode << "," << round << "," << c.id << "," << metric << "," << value << "\n";
  csv_.flush();
}

absl::StatusOr<std::unique_ptr<harness::Process>> Suite::spawnListening(
    const harness::Pod& pod, const std::vector<std::string>& argv, uint16_t port,
    const std::string& address) {
  auto proc = mesh_->cluster().spawn(pod, argv);
  if (!proc.ok()) {
    return proc.status();
  }
  const std::string filter =
      address.empty() ? absl::StrCat("sport = :", port) : absl::StrCat("src ", address, ":", port);
  for (int i = 0; i < 250; ++i) {
    auto r = mesh_->cluster().run(pod, {"ss", "-ltnH", filter}, absl::Seconds(5));
    if (r.ok() && r->exit_code == 0 && !r->out.empty()) {
      return proc;
    }
    if (!(*proc)->running()) {
      return absl::InternalError(absl::StrCat(argv[0], " exited: ", (*proc)->log()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(argv[0], " never listened on ", port, ": ", (*proc)->log()));
}

absl::Status Suite::setUp() {
  fs::create_directories(options_.out_dir);
  csv_.open(options_.out_dir + "/raw.csv");
  csv_ << "mode,round,case,metric,value\n";
  meta_.open(options_.out_dir + "/meta.txt");
  meta_ << "date: " << absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::Now(), absl::UTCTimeZone())
        << "\nmachine: " << machineDescription() << "\nload average at start: " << loadAverage()
        << "\nmode: " << options_.mode << ", rounds " << options_.rounds << ", latency runs "
        << options_.latency_seconds << " s at " << options_.rate << " req/s over "
        << options_.latency_connections << " connections, load runs " << options_.load_seconds
        << " s, " << options_.idle_connections << " idle connections\n"
        << "agent flags: "
        << (options_.agent_flags.empty() ? "(defaults)" : absl::StrJoin(options_.agent_flags, " "))
        << "\n";

  if (options_.allocations) {
    if (auto s = addMallocProbe(); !s.ok()) {
      return s;
    }
  }
  e2e::MeshOptions mesh_options;
  mesh_options.nodes = 2;
  mesh_options.pods_per_node = 3;
  mesh_options.extra_agent_flags = options_.agent_flags;
  auto mesh = e2e::Mesh::start(mesh_options);
  if (!mesh.ok()) {
    return mesh.status();
  }
  mesh_ = *std::move(mesh);
  // n1p2 and n2p2 carry the cases without Ferry: take them out of the mesh.
  for (int n : {1, 2}) {
    if (auto s = enroll::delPod(mesh_->enrollSocket(n), e2e::Mesh::uidOf(mesh_->pod(n, 2)));
        !s.ok()) {
      return s;
    }
  }
  // Many short connections in a row: wide port range, reuse of TIME_WAIT ports (per netns).
  for (int n : {1, 2}) {
    for (int p : {1, 2, 3}) {
      auto r = mesh_->run(mesh_->pod(n, p),
                          {"sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65000",
                           "net.ipv4.tcp_tw_reuse=1"});
      if (!r.ok()) {
        return r.status();
      }
    }
  }
  if (auto s = startServers(); !s.ok()) {
    return s;
  }
  if (auto s = startPeers(); !s.ok()) {
    return s;
  }
  if (auto s = applyL7Policy(); !s.ok()) {
    return s;
  }

  const std::vector<pid_t> agents = {mesh_->agent(1).pid(), mesh_->agent(2).pid()};
  const harness::Pod& l4 = mesh_->pod(2, 1);
  const harness::Pod& plain = mesh_->pod(2, 2);
  const harness::Pod& l7 = mesh_->pod(2, 3);
  auto http = [](const std::string& ip, uint16_t port) {
    return absl::StrCat(ip, ":", port, kBenchPath);
  };
  const pid_t stc = processes_[processes_.size() - 4]->pid();
  const pid_t sts = processes_[processes_.size() - 3]->pid();
  const pid_t hac = processes_[processes_.size() - 2]->pid();
  const pid_t has = processes_[processes_.size() - 1]->pid();
  std::vector<Case> all = {
      {"no_mesh",
       "no mesh",
       mesh_->pod(1, 2),
       http(plain.ipv4, kAppPort),
       plain.ipv4,
       kIperfPort,
       "",
       {}},
      {"ferry_l4", "Ferry L4 mTLS", mesh_->pod(1, 1), http(l4.ipv4, kAppPort), l4.ipv4, kIperfPort,
       http(l4.ipv4, kAppPort), agents},
      {"ferry_l7", "Ferry + L7 policy", mesh_->pod(1, 1), http(l7.ipv4, kAppPort), "", 0, "",
       agents},
      {"ferry_l7_routed", "Ferry + HTTPRoute + L7 policy", mesh_->pod(1, 1),
       http(kL7ServiceVip, kAppPort), "", 0, "", agents},
      {"ferry_l7_routed_local", "Ferry + HTTPRoute + L7 policy, same node", mesh_->pod(2, 1),
       http(kL7ServiceVip, kAppPort), "", 0, "", agents},
      {"ferry_same_node", "Ferry same node", mesh_->pod(2, 3), http(l4.ipv4, kAppPort), l4.ipv4,
       kIperfPort, "", agents},
      {"stunnel",
       "stunnel pair",
       mesh_->pod(1, 2),
       http("127.0.0.1", kStunnelHttpLocal),
       "127.0.0.1",
       kStunnelIperfLocal,
       http("127.0.0.1", kStunnelHttpLocal),
       {stc, sts}},
      {"haproxy",
       "HAProxy pair",
       mesh_->pod(1, 2),
       http("127.0.0.1", kHaproxyHttpLocal),
       "127.0.0.1",
       kHaproxyIperfLocal,
       http("127.0.0.1", kHaproxyHttpLocal),
       {hac, has}},
  };
  if (jwt_) {
    const std::string target = absl::StrCat(l7.ipv4, ":", kAppPort, kJwtPath);
    all.push_back({"ferry_l7_jwt",
                   "Ferry L7 + JWT, repeated token",
                   mesh_->pod(1, 1),
                   target,
                   "",
                   0,
                   "",
                   agents,
                   {"--header-file=" + jwt_->repeated_headers}});
    all.push_back({"ferry_l7_jwt_new",
                   "Ferry L7 + JWT, first-seen tokens",
                   mesh_->pod(1, 1),
                   target,
                   "",
                   0,
                   "",
                   agents,
                   {"--header-file=" + jwt_->distinct_headers}});
  }
  for (Case& c : all) {
    if (options_.only_cases.empty() ||
        std::count(options_.only_cases.begin(), options_.only_cases.end(), c.id) > 0) {
      cases_.push_back(std::move(c));
    }
  }
  return checkCases();
}

absl::Status Suite::startServers() {
  for (int p : {1, 2, 3}) {
    const harness::Pod& pod = mesh_->pod(2, p);
    auto app = spawnListening(
        pod, {options_.loadgen, "serve", absl::StrCat("--port=", kAppPort), "--threads=2"},
        kAppPort);
    if (!app.ok()) {
      return app.status();
    }
    processes_.push_back(*std::move(app));
    if (p == 3) {
      continue;  // the L7 case has no throughput rows
    }
    auto iperf = spawnListening(pod, {"/usr/bin/iperf3", "-s", "-p", std::to_string(kIperfPort)},
                                kIperfPort);
    if (!iperf.ok()) {
      return iperf.status();
    }
    processes_.push_back(*std::move(iperf));
  }
  return absl::OkStatus();
}

absl::Status Suite::startPeers() {
  const std::string dir = mesh_->cluster().scratchDir() + "/peers";
  fs::create_directories(dir);
  writeFile(dir + "/ca.pem", mesh_->ca().rootPem());
  auto files = [&](const std::string& name) {
    fakes::IssuedCert cert = mesh_->ca().issue("default", name);
    TlsFiles f{dir + "/ca.pem", dir + "/" + name + ".crt", dir + "/" + name + ".key",
               dir + "/" + name + ".pem"};
    writeFile(f.cert, cert.cert_pem);
    writeFile(f.key, cert.key_pem);
    writeFile(f.both, cert.cert_pem + cert.key_pem);
    return f;
  };
  const harness::Pod& client = mesh_->pod(1, 2);
  const harness::Pod& server = mesh_->pod(2, 2);
  writeFile(dir + "/stunnel-client.conf",
            stunnelClientConfig(files("stunnel-client"), server.ipv4));
  writeFile(dir + "/stunnel-server.conf", stunnelServerConfig(files("stunnel-server")));
  writeFile(dir + "/haproxy-client.cfg", haproxyClientConfig(files("haproxy-client"), server.ipv4));
  writeFile(dir + "/haproxy-server.cfg", haproxyServerConfig(files("haproxy-server")));
  struct Start {
    const harness::Pod& pod;
    std::vector<std::string> argv;
    uint16_t port;
  };
  const std::vector<Start> starts = {
      {client, {"/usr/bin/stunnel4", dir + "/stunnel-client.conf"}, kStunnelHttpLocal},
      {server, {"/usr/bin/stunnel4", dir + "/stunnel-server.conf"}, kStunnelHttpTls},
      {client, {"/usr/sbin/haproxy", "-db", "-f", dir + "/haproxy-client.cfg"}, kHaproxyHttpLocal},
      {server, {"/usr/sbin/haproxy", "-db", "-f", dir + "/haproxy-server.cfg"}, kHaproxyHttpTls},
  };
  for (const Start& s : starts) {
    auto p = spawnListening(s.pod, s.argv, s.port);
    if (!p.ok()) {
      return p.status();
    }
    processes_.push_back(*std::move(p));
  }
  return absl::OkStatus();
}

absl::Status Suite::applyL7Policy() {
  if (auto s = mesh_->applyManifest("bench-l7-service.yaml", kL7Service); !s.ok()) {
    return s;
  }
  std::string policy = kL7Policy;
  if (!options_.l7_jwt.empty()) {
    const std::string dir = mesh_->cluster().scratchDir() + "/jwt";
    fs::create_directories(dir);
    auto jwt = makeJwtCases(options_.l7_jwt, dir);
    if (!jwt.ok()) {
      return jwt.status();
    }
    jwt_ = *std::move(jwt);
    note(absl::StrCat("ferry_l7: a RequestAuthentication (", options_.l7_jwt,
                      ") on n2p3; ferry_l7_jwt repeats one token, ferry_l7_jwt_new sends ",
                      kDistinctTokens, " tokens in turn"));
    if (auto s = mesh_->applyManifest("bench-l7-jwt.yaml", jwt_->request_authentication); !s.ok()) {
      return s;
    }
    policy += jwt_->policy_rule;
  }
  if (options_.l7_rate_limit) {
    note("ferry_l7: with a never-binding RateLimitPolicy (total and identity) on n2p3");
    if (auto s = mesh_->applyManifest("bench-l7-ratelimit.yaml", kL7RateLimit); !s.ok()) {
      return s;
    }
  }
  if (auto s = mesh_->applyManifest("bench-l7-route.yaml", kL7Route); !s.ok()) {
    return s;
  }
  return mesh_->applyManifest("bench-l7-policy.yaml", policy);
}

absl::StatusOr<std::string> Suite::loadgen(const harness::Pod& pod, std::vector<std::string> args,
                                           double seconds) {
  args.insert(args.begin(), options_.loadgen);
  return mesh_->run(pod, args, absl::Seconds(seconds + 60));
}

absl::Status Suite::checkCases() {
  // Every case answers before anything is measured, and the two HTTP ACLs really refuse other
  // paths. A case that fails is noted and left out (its rows missing make the run fail).
  std::vector<Case> working;
  for (Case& c : cases_) {
    if (auto s = checkCase(c); !s.ok()) {
      ++failures_;
      note(absl::StrCat(c.id, " left out: ", s.message()));
      continue;
    }
    working.push_back(std::move(c));
  }
  cases_ = std::move(working);
  return cases_.empty() ? absl::UnavailableError("no case works (see meta.txt)") : absl::OkStatus();
}

absl::Status Suite::checkCase(const Case& c) {
  std::vector<std::string> args = {"run", "--target=" + c.http_target, "--rate=50",
                                   "--connections=1", "--seconds=0.2"};
  args.insert(args.end(), c.loadgen_args.begin(), c.loadgen_args.end());
  auto out = loadgen(c.client, args, 1);
  if (!out.ok()) {
    return absl::UnavailableError(absl::StrCat("does not answer: ", out.status().message()));
  }
  auto j = nlohmann::json::parse(*out, nullptr, false);
  if (j.is_discarded() || j["errors"] != 0 || j["bad_status"] != 0) {
    return absl::UnavailableError(absl::StrCat("answers badly: ", *out));
  }
  if (c.id == "ferry_l7" || c.id == "ferry_l7_routed" || c.id == "ferry_l7_routed_local" ||
      c.id == "haproxy") {
    std::string denied = c.http_target.substr(0, c.http_target.find('/')) + "/other";
    auto d =
        loadgen(c.client,
                {"run", "--target=" + denied, "--rate=50", "--connections=1", "--seconds=0.1"}, 1);
    // ferry-loadgen exits non-zero when no request got a 2xx: what a refusing ACL gives.
    if (d.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("a request outside the HTTP ACL was allowed: ", *d));
    }
    note(absl::StrCat(c.id, ": requests outside the HTTP ACL are refused (checked)"));
  }
  if (!c.loadgen_args.empty()) {
    // The JWT cases: the same path without a token is refused (the policy needs its principal).
    auto d = loadgen(
        c.client,
        {"run", "--target=" + c.http_target, "--rate=50", "--connections=1", "--seconds=0.1"}, 1);
    if (d.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("a request without a token was allowed: ", *d));
    }
    note(absl::StrCat(c.id, ": requests without a token are refused (checked)"));
  }
  return absl::OkStatus();
}

}  // namespace ferry::bench
