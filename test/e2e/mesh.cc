// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "e2e/mesh.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "enroll/client.h"
#include "poll_until.h"
#include "tls/x509.h"

namespace ferry::e2e {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string agentBinary() {
  // FERRY_E2E_AGENT_BIN runs the suites against another build (before/after measurements).
  const char* other = std::getenv("FERRY_E2E_AGENT_BIN");
  return other != nullptr && *other != '\0' ? other : FERRY_AGENT_BIN;
}
std::string meshAppsScript() {
  return FERRY_SOURCE_DIR "/test/e2e/mesh_apps.py";
}
std::string controllerBinary() {
  return FERRY_CONTROLLER_BIN;
}
std::string h2ClientScript() {
  return FERRY_SOURCE_DIR "/test/hbone/h2_connect_client.py";
}

uint16_t freeLoopbackPort() {
  // A port is free once its probe socket closes, so the kernel may offer it again before the
  // process it was meant for binds it (seen: the controller given node2's admin port). Never
  // hand out the same port twice in one test process.
  static std::mutex mu;
  static std::set<uint16_t> given;
  std::lock_guard lock(mu);
  uint16_t port = 0;
  for (int attempt = 0; attempt < 1000 && (port == 0 || given.count(port) > 0); ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    port = ntohs(a.sin_port);
  }
  given.insert(port);
  return port;
}

absl::StatusOr<std::string> httpGet(uint16_t port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("admin port ", port, " not answering"));
  }
  std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  auto body = out.find("\r\n\r\n");
  if (out.rfind("HTTP/1.0 200", 0) != 0 || body == std::string::npos) {
    return absl::UnavailableError("admin answered: " + out.substr(0, 80));
  }
  return out.substr(body + 4);
}

namespace {

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string podManifest(const harness::Pod& pod) {
  return absl::StrCat("apiVersion: v1\nkind: Pod\nmetadata:\n  name: ", pod.name,
                      "\n  namespace: default\n  uid: ", Mesh::uidOf(pod),
                      "\n  labels:\n    app: ", pod.name, "\nspec:\n  nodeName: node", pod.node,
                      "\n  serviceAccountName: ", Mesh::saOf(pod), "\nstatus:\n  podIP: ", pod.ipv4,
                      "\n  podIPs:\n  - ip: ", pod.ipv4, "\n  - ip: ", pod.ipv6, "\n");
}

}  // namespace

void Mesh::writeCert(const std::string& dir, const std::string& name,
                     const fakes::IssuedCert& cert) {
  writeFile(dir + "/" + name + ".crt", cert.cert_pem);
  writeFile(dir + "/" + name + ".key", cert.key_pem);
}

enroll::PodInfo Mesh::podInfo(const harness::Pod& pod) const {
  return enroll::PodInfo{uidOf(pod), pod.name,       "default",
                         saOf(pod),  pod.netns_path, {pod.ipv4, pod.ipv6}};
}

absl::StatusOr<std::unique_ptr<Mesh>> Mesh::start(const MeshOptions& options) {
  // Enough descriptors for 1,000 concurrent connections on each side of each agent.
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);

  auto mesh = std::unique_ptr<Mesh>(new Mesh());
  mesh->options_ = options;
  auto cluster = harness::Cluster::create({options.nodes, options.pods_per_node});
  if (!cluster.ok()) {
    return cluster.status();
  }
  mesh->cluster_ = *std::move(cluster);
  const std::string scratch = mesh->cluster_->scratchDir();
  mesh->ca_ = std::make_unique<fakes::FakeCa>("cluster.local");
  mesh->ca_pem_ = scratch + "/ca.pem";
  writeFile(mesh->ca_pem_, mesh->ca_->rootPem());
  mesh->manifests_ = scratch + "/manifests";
  fs::create_directories(mesh->manifests_);
  for (const harness::Node& node : mesh->cluster_->nodes()) {
    std::string certs = absl::StrCat(scratch, "/certs-", node.name);
    fs::create_directories(certs);
    writeFile(certs + "/bundle.pem", mesh->ca_->rootPem());
    for (const harness::Pod& pod : node.pods) {
      writeCert(certs, "default." + saOf(pod), mesh->ca_->issue("default", saOf(pod)));
      writeFile(absl::StrCat(mesh->manifests_, "/pod-", pod.name, ".yaml"), podManifest(pod));
    }
    mesh->certs_.push_back(certs);
    mesh->sockets_.push_back(absl::StrCat(scratch, "/", node.name, "-agent.sock"));
    mesh->admin_ports_.push_back(freeLoopbackPort());
    mesh->metrics_ports_.push_back(freeLoopbackPort());
    mesh->readiness_ports_.push_back(freeLoopbackPort());
  }
  writeFile(mesh->manifests_ + "/service-web.yaml",
            absl::StrCat("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: "
                         "default\nspec:\n  clusterIP: ",
                         kWebVip,
                         "\n  selector:\n    app: n2p1\n  ports:\n  - name: tcp-web\n    port: 80\n"
                         "    targetPort: 8080\n"));
  if (options.controller) {
    if (auto s = mesh->startController(); !s.ok()) {
      return s;
    }
  }
  for (int n = 1; n <= options.nodes; ++n) {
    mesh->agents_.emplace_back();
    if (auto s = mesh->startAgent(n); !s.ok()) {
      return s;
    }
  }
  for (const harness::Node& node : mesh->cluster_->nodes()) {
    for (const harness::Pod& pod : node.pods) {
      if (auto s = enroll::addPod(mesh->sockets_[node.index - 1], mesh->podInfo(pod)); !s.ok()) {
        return s;
      }
    }
  }
  return mesh;
}

Mesh::~Mesh() {
  apps_.clear();
  // The end of a test: no successor is coming, so the drain is ended at once (the second signal)
  // instead of serving out its grace with no one left to serve.
  for (auto& a : agents_) {
    if (a) {
      a->signal(SIGTERM);
      a->signal(SIGINT);
    }
  }
  for (auto& a : agents_) {
    if (a) {
      (void)a->wait(absl::Seconds(10));
    }
  }
  agents_.clear();
  if (controller_) {
    controller_->signal(SIGTERM);
    (void)controller_->wait(absl::Seconds(10));
  }
}

absl::Status Mesh::startAgent(int n) {
  const harness::Node& node = cluster_->node(n);
  std::vector<std::string> argv = {agentBinary(), "--node=" + node.name};
  if (options_.controller) {
    argv.insert(argv.end(),
                {absl::StrCat("--controller=127.0.0.1:", controller_port_),
                 "--bootstrap-token-file=" + token_path_, "--controller-ca=" + bundle_path_});
  } else {
    argv.insert(argv.end(), {"--certs=" + certs_[n - 1], "--manifests=" + manifests_});
  }
  argv.insert(argv.end(), {
                              "--capture=bpf",
                              "--cgroup=" + node.cgroup_path,
                              "--bpffs=" + node.bpffs_dir,
                              "--enroll-socket=" + sockets_[n - 1],
                              absl::StrCat("--state-file=", cluster_->scratchDir(), "/", node.name,
                                           "-pods.json"),
                              absl::StrCat("--admin-port=", admin_ports_[n - 1]),
                              absl::StrCat("--metrics-address=127.0.0.1:", metrics_ports_[n - 1]),
                              "--readiness-address=127.0.0.1",
                              absl::StrCat("--readiness-port=", readiness_ports_[n - 1]),
                              absl::StrCat("--workers=", options_.workers),
                          });
  argv.insert(argv.end(), options_.extra_agent_flags.begin(), options_.extra_agent_flags.end());
  if (options_.agent_command) {
    argv = options_.agent_command(node, std::move(argv));
  }
  auto proc = cluster_->spawnAgent(node, argv);
  if (!proc.ok()) {
    return proc.status();
  }
  agents_[n - 1] = *std::move(proc);
  return waitReady(n);
}

absl::Status Mesh::stopAgent(int n) {
  agents_[n - 1]->signal(SIGTERM);
  auto rc = agents_[n - 1]->wait(absl::Seconds(15));
  if (!rc.ok()) {
    return rc.status();
  }
  return *rc == 0 ? absl::OkStatus()
                  : absl::InternalError(
                        absl::StrCat("agent exited ", *rc, ":\n", agents_[n - 1]->log()));
}

absl::Status Mesh::restartAgent(int n) {
  if (auto s = stopAgent(n); !s.ok()) {
    return s;
  }
  return startAgent(n);
}

absl::StatusOr<Mesh::Upgrade> Mesh::upgradeAgent(int n, bool surge) {
  Upgrade up;
  up.old = std::move(agents_[n - 1]);
  absl::Time start = absl::Now();
  if (!surge) {
    up.old->signal(SIGTERM);
  }
  if (auto s = startAgent(n); !s.ok()) {
    return s;
  }
  // /ready may have been answered by the old agent (the socket is shared until the hand-over
  // completes): the new agent's own word is its log line.
  if (!waitAgentLog(n, "handover: accepting")) {
    return absl::DeadlineExceededError("the new agent never took over:\n" + agentLog(n));
  }
  up.ready_after = absl::Now() - start;
  return up;
}

absl::Status Mesh::waitReady(int n) {
  // Bounded (not a timing assertion: the agent is just starting).
  bool ready = false;
  const bool settled = testing::pollUntil(
      [&] {
        ready = httpGet(admin_ports_[n - 1], "/ready").ok();
        return ready || !agents_[n - 1]->running();
      },
      10s);
  if (ready) {
    return absl::OkStatus();
  }
  if (settled) {
    return absl::InternalError("agent for node" + std::to_string(n) + " exited:\n" +
                               agents_[n - 1]->log());
  }
  return absl::DeadlineExceededError("agent never became ready:\n" + agents_[n - 1]->log());
}

absl::StatusOr<std::map<std::string, int64_t>> Mesh::stats(int node) {
  auto body = httpGet(admin_ports_.at(node - 1), "/stats");
  if (!body.ok()) {
    return body.status();
  }
  auto j = nlohmann::json::parse(*body, nullptr, false);
  if (j.is_discarded()) {
    return absl::DataLossError("bad /stats JSON");
  }
  std::map<std::string, int64_t> out;
  for (auto& [k, v] : j.items()) {
    if (v.is_number_integer()) {
      out[k] = v.get<int64_t>();
    }
  }
  return out;
}

int64_t Mesh::stat(int node, const std::string& name) {
  auto s = stats(node);
  if (!s.ok() || !s->count(name)) {
    return -1;
  }
  return s->at(name);
}

int Mesh::agentFds(int node) const {
  int count = 0;
  std::error_code ec;
  for (auto it =
           fs::directory_iterator(absl::StrCat("/proc/", agents_.at(node - 1)->pid(), "/fd"), ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    ++count;
  }
  return count;
}

absl::Status Mesh::waitStateVersion(int64_t at_least) {
  const bool loaded = testing::pollUntil(
      [&] {
        for (int n = 1; n <= options_.nodes; ++n) {
          if (stat(n, "state_version") < at_least) {
            return false;
          }
        }
        return true;
      },
      10s);
  return loaded ? absl::OkStatus()
                : absl::DeadlineExceededError("agents did not load the new manifests");
}

std::map<int, int64_t> Mesh::stateVersions() {
  std::map<int, int64_t> out;
  for (int n = 1; n <= options_.nodes; ++n) {
    out[n] = stat(n, "state_version");
  }
  return out;
}

bool Mesh::allPast(const std::map<int, int64_t>& before) {
  for (const auto& [n, version] : before) {
    if (stat(n, "state_version") <= version) {
      return false;
    }
  }
  return true;
}

absl::Status Mesh::syncAgents(const std::map<int, int64_t>& before) {
  // Every node runs a mesh pod, so every node's view holds every Service of "default": a new
  // port on this one changes each view. Written after the change the caller made, so a
  // controller reload that sees it has seen that change too.
  std::string tmp = manifests_ + "/.e2e-sync.yaml.tmp";
  writeFile(tmp, absl::StrCat("apiVersion: v1\nkind: Service\nmetadata:\n  name: e2e-sync\n"
                              "  namespace: default\nspec:\n  clusterIP: 10.96.255.250\n"
                              "  ports:\n  - name: tcp-sync\n    port: ",
                              1 + (++sync_generation_ % 60000), "\n"));
  fs::rename(tmp, manifests_ + "/e2e-sync.yaml");
  // Bounded by 60 s: an agent that lost the controller reconnects after its backoff.
  return testing::pollUntil([&] { return allPast(before); }, 60s, 5ms)
             ? absl::OkStatus()
             : absl::DeadlineExceededError("agents did not take the manifest change");
}

absl::Status Mesh::applyManifest(const std::string& file_name, const std::string& yaml) {
  std::map<int, int64_t> before = stateVersions();
  // Written whole and renamed, so an agent (or the controller) never reads half a file.
  std::string tmp = manifests_ + "/." + file_name + ".tmp";
  writeFile(tmp, yaml);
  fs::rename(tmp, manifests_ + "/" + file_name);
  if (options_.controller) {
    return syncAgents(before);
  }
  return waitStateVersion(++manifest_version_);
}

absl::Status Mesh::removeManifest(const std::string& file_name) {
  std::map<int, int64_t> before = stateVersions();
  fs::remove(manifests_ + "/" + file_name);
  if (options_.controller) {
    return syncAgents(before);
  }
  return waitStateVersion(++manifest_version_);
}

absl::StatusOr<std::string> Mesh::run(const harness::Pod& pod, const std::vector<std::string>& argv,
                                      absl::Duration timeout) {
  auto r = cluster_->run(pod, argv, timeout);
  if (!r.ok()) {
    return r.status();
  }
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat(absl::StrJoin(argv, " "), " in ", pod.name, " exited ",
                                            r->exit_code, "\nstdout: ", r->out,
                                            "\nstderr: ", r->err));
  }
  return r->out;
}

absl::Status Mesh::startApp(const harness::Pod& pod, const std::vector<std::string>& args,
                            uint16_t port) {
  std::vector<std::string> argv = {"/usr/bin/python3", meshAppsScript()};
  argv.insert(argv.end(), args.begin(), args.end());
  return startServer(pod, argv, port);
}

absl::Status Mesh::startServer(const harness::Pod& pod, const std::vector<std::string>& argv,
                               uint16_t port) {
  auto proc = cluster_->spawn(pod, argv);
  if (!proc.ok()) {
    return proc.status();
  }
  apps_.push_back(*std::move(proc));
  harness::Process& p = *apps_.back();
  const std::string filter = absl::StrCat("sport = :", port);
  bool listening = false;
  const bool settled = testing::pollUntil(
      [&] {
        auto r = cluster_->run(pod, {"ss", "-ltnH", filter}, absl::Seconds(5));
        listening = r.ok() && r->exit_code == 0 && !r->out.empty();
        return listening || !p.running();
      },
      10s);
  if (listening) {
    return absl::OkStatus();
  }
  if (settled) {
    return absl::InternalError(absl::StrCat(argv[0], " exited: ", p.log()));
  }
  return absl::DeadlineExceededError(absl::StrCat(argv[0], " never listened: ", p.log()));
}

absl::Status Mesh::startController() {
  const std::string scratch = cluster_->scratchDir();
  if (controller_port_ == 0) {
    controller_port_ = freeLoopbackPort();
    bundle_path_ = scratch + "/controller-bundle.pem";
    token_path_ = scratch + "/bootstrap-token";
    ca_dir_ = scratch + "/controller-ca";
    writeFile(token_path_, "e2e-bootstrap-token-0123456789abcdef\n");
    // The controller keeps its root in --ca-dir and signs with the one it finds there: the
    // fake CA's, so certificates a test issues with ca() are trusted as the controller's.
    fs::create_directories(ca_dir_);
    fs::permissions(ca_dir_, fs::perms::owner_all, fs::perm_options::replace);
    auto key_pem = tls::keyToPem(ca_->rootKey());
    if (!key_pem.ok()) {
      return key_pem.status();
    }
    writeFile(ca_dir_ + "/root-cert.pem", ca_->rootPem());
    writeFile(ca_dir_ + "/root-key.pem", *key_pem);
    writeFile(manifests_ + "/namespace-default.yaml",
              "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels:\n"
              "    ferry.dev/mesh: enabled\n");
  }
  std::vector<std::string> argv = {controllerBinary(),
                                   "--manifests=" + manifests_,
                                   "--bootstrap-token-file=" + token_path_,
                                   "--ca-dir=" + ca_dir_,
                                   "--trust-bundle-file=" + bundle_path_,
                                   "--reload-debounce-ms=20",
                                   absl::StrCat("--listen=127.0.0.1:", controller_port_)};
  argv.insert(argv.end(), options_.extra_controller_flags.begin(),
              options_.extra_controller_flags.end());
  auto proc = cluster_->spawnAgent(cluster_->node(1), argv);
  if (!proc.ok()) {
    return proc.status();
  }
  controller_ = *std::move(proc);
  // Bounded: the controller logs "serving agents" once its port is open.
  auto serving = [&] {
    return controller_->log().find("serving agents on port") != std::string::npos;
  };
  const bool settled =
      testing::pollUntil([&] { return serving() || !controller_->running(); }, 10s);
  if (serving()) {
    return absl::OkStatus();
  }
  if (settled) {
    return absl::InternalError("ferry-controller exited:\n" + controller_->log());
  }
  return absl::DeadlineExceededError("ferry-controller never served:\n" + controller_->log());
}

bool Mesh::waitAgentLog(int node, const std::string& text) const {
  return testing::pollUntil([&] { return agentLog(node).find(text) != std::string::npos; }, 30s);
}

absl::Status Mesh::stopController() {
  controller_->signal(SIGTERM);
  auto rc = controller_->wait(absl::Seconds(15));
  if (!rc.ok()) {
    return rc.status();
  }
  return *rc == 0 ? absl::OkStatus()
                  : absl::InternalError(
                        absl::StrCat("ferry-controller exited ", *rc, ":\n", controller_->log()));
}

absl::Status Mesh::rotateRoot() {
  auto count = [](const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
      ++n;
    }
    return n;
  };
  constexpr char kRootChanged[] = "signing root changed";
  std::vector<int> before;
  for (int n = 1; n <= options_.nodes; ++n) {
    before.push_back(count(agentLog(n), kRootChanged));
  }
  controller_->signal(SIGHUP);
  const bool rotated = testing::pollUntil(
      [&] {
        for (int n = 1; n <= options_.nodes; ++n) {
          const std::string log = agentLog(n);
          // The root change, then a certificate issued after it.
          auto at = log.rfind(kRootChanged);
          if (count(log, kRootChanged) <= before[n - 1] ||
              log.find("certificates: issued", at) == std::string::npos) {
            return false;
          }
        }
        return true;
      },
      20s);
  return rotated ? absl::OkStatus()
                 : absl::DeadlineExceededError("agents did not take the rotated root:\n" +
                                               controllerLog());
}

absl::StatusOr<absl::Duration> Mesh::applyManifestOn(const std::string& file_name,
                                                     const std::string& yaml,
                                                     const std::vector<int>& nodes) {
  std::map<int, int64_t> before;
  for (int n : nodes) {
    before[n] = stat(n, "state_version");
  }
  std::string tmp = manifests_ + "/." + file_name + ".tmp";
  writeFile(tmp, yaml);
  const absl::Time start = absl::Now();
  fs::rename(tmp, manifests_ + "/" + file_name);
  // Bounded by 60 s: an agent that lost the controller reconnects after its backoff. Polled
  // every 2 ms at most: the time it took is the result.
  if (!testing::pollUntil([&] { return allPast(before); }, 60s, 2ms)) {
    return absl::DeadlineExceededError("agents did not apply " + file_name);
  }
  return absl::Now() - start;
}

}  // namespace ferry::e2e
