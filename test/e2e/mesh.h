// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A running mesh for end-to-end tests: the local cluster (test/harness), one ferry-agent
// process per node with real eBPF capture, workload certificates from a fake CA, manifests for
// every pod (default namespace, service account "sa-<pod>", label app=<pod>) plus a Service
// "web" (10.96.0.10:80 -> app=n2p1:8080), and every pod enrolled through the CNI protocol.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "enroll/protocol.h"
#include "fakes/ca/fake_ca.h"
#include "harness/cluster.h"

namespace ferry::e2e {

inline constexpr char kWebVip[] = "10.96.0.10";

struct MeshOptions {
  int nodes = 2;
  int pods_per_node = 2;
  int workers = 2;
  std::vector<std::string> extra_agent_flags;
  // Agents get state and workload certificates from a ferry-controller process (standalone
  // mode on the manifests folder, plus a Namespace "default" in the mesh), as users run Ferry;
  // its CA signs with the fake CA's root, so ca() issues certificates the agents trust. False:
  // the agents read the folder and fake-CA files themselves (e2e_manifest_mode_test).
  bool controller = true;
  std::vector<std::string> extra_controller_flags;
  // When set, turns a node's agent command line (argv[0] is the host's ferry-agent) into the
  // one to spawn instead, e.g. the agent image under podman (e2e_container_test).
  std::function<std::vector<std::string>(const harness::Node&, std::vector<std::string>)>
      agent_command;
};

class Mesh {
 public:
  static absl::StatusOr<std::unique_ptr<Mesh>> start(const MeshOptions& options = {});
  ~Mesh();

  harness::Cluster& cluster() { return *cluster_; }
  const harness::Pod& pod(int node, int index) const { return cluster_->pod(node, index); }
  fakes::FakeCa& ca() { return *ca_; }
  const std::string& caPemPath() const { return ca_pem_; }
  const std::string& manifestsDir() const { return manifests_; }

  // Adds or replaces a manifest file and waits until every agent has loaded it. Controller
  // mode: an agent the change does not concern gets no update, so a sync Service every node
  // receives is changed after it; once every agent has that, every agent has the change.
  absl::Status applyManifest(const std::string& file_name, const std::string& yaml);
  absl::Status removeManifest(const std::string& file_name);

  // Controller mode: the ferry-controller process, stopped and started with the same flags and
  // CA folder (the root is kept there).
  absl::Status startController();
  absl::Status stopController();
  bool controllerRunning() const { return controller_ && controller_->running(); }
  std::string controllerLog() const { return controller_ ? controller_->log() : ""; }
  const std::string& trustBundlePath() const { return bundle_path_; }
  // SIGHUP to the controller (root rotation); waits until every agent has the new bundle and
  // re-issued its workload certificates from the new root.
  absl::Status rotateRoot();
  // Writes a manifest and returns how long it took until the agents on `nodes` applied a new
  // state version (measured, for reports; tests do not assert it).
  absl::StatusOr<absl::Duration> applyManifestOn(const std::string& file_name,
                                                 const std::string& yaml,
                                                 const std::vector<int>& nodes);

  // The agent's counters (admin /stats) on a node.
  absl::StatusOr<std::map<std::string, int64_t>> stats(int node);
  int64_t stat(int node, const std::string& name);
  // Loopback ports of a node's agent: admin (15000), metrics (15020), readiness (15021).
  uint16_t adminPort(int node) const { return admin_ports_.at(node - 1); }
  uint16_t metricsPort(int node) const { return metrics_ports_.at(node - 1); }
  uint16_t readinessPort(int node) const { return readiness_ports_.at(node - 1); }
  // Open descriptors of the node's agent process.
  int agentFds(int node) const;
  harness::Process& agent(int node) { return *agents_.at(node - 1); }
  std::string agentLog(int node) const { return agents_.at(node - 1)->log(); }
  // Bounded wait (30 s) for `text` in a node's agent log.
  bool waitAgentLog(int node, const std::string& text) const;
  const std::string& enrollSocket(int node) const { return sockets_.at(node - 1); }
  // Stops (SIGTERM, drain) and starts a node's agent with the same flags; a started agent
  // replays its journal.
  absl::Status stopAgent(int node);
  absl::Status startAgent(int node);
  absl::Status restartAgent(int node);
  // An upgrade in place (issue 18): SIGTERM to the node's agent and, at once, a new agent with
  // the same flags, which takes the listeners over; waits until the new one is ready. Returns
  // the old process (it drains; the caller waits for its exit) and how long from the SIGTERM
  // (or the start) until the new agent accepted. `surge`: the new agent starts while the old one
  // runs and the old one gets no signal (a DaemonSet's maxSurge; the caller sends SIGTERM).
  struct Upgrade {
    std::unique_ptr<harness::Process> old;
    absl::Duration ready_after;
  };
  absl::StatusOr<Upgrade> upgradeAgent(int node, bool surge = false);

  static std::string uidOf(const harness::Pod& pod) { return "uid-" + pod.name; }
  static std::string saOf(const harness::Pod& pod) { return "sa-" + pod.name; }
  enroll::PodInfo podInfo(const harness::Pod& pod) const;

  // Runs argv in a pod; returns stdout, or an error with stderr and stdout.
  absl::StatusOr<std::string> run(const harness::Pod& pod, const std::vector<std::string>& argv,
                                  absl::Duration timeout = absl::Seconds(120));
  // Starts an app from test/e2e/mesh_apps.py in a pod and waits until it listens.
  absl::Status startApp(const harness::Pod& pod, const std::vector<std::string>& args,
                        uint16_t port);
  // Starts any server in a pod and waits until something listens on `port` there.
  absl::Status startServer(const harness::Pod& pod, const std::vector<std::string>& argv,
                           uint16_t port);
  // Writes a leaf (and key) for `id` signed by `ca` into `dir` as <name>.crt/.key.
  static void writeCert(const std::string& dir, const std::string& name,
                        const fakes::IssuedCert& cert);

 private:
  Mesh() = default;
  absl::Status waitReady(int node);
  absl::Status waitStateVersion(int64_t at_least);
  // Controller mode: bumps the sync Service and waits until every agent moved past `before`.
  absl::Status syncAgents(const std::map<int, int64_t>& before);
  std::map<int, int64_t> stateVersions();
  // Every node in `before` has a state version past the one noted there.
  bool allPast(const std::map<int, int64_t>& before);

  MeshOptions options_;
  std::unique_ptr<harness::Cluster> cluster_;
  std::unique_ptr<fakes::FakeCa> ca_;
  std::string ca_pem_;
  std::string manifests_;
  std::vector<std::string> certs_;
  std::vector<std::string> sockets_;
  std::vector<uint16_t> admin_ports_;
  std::vector<uint16_t> metrics_ports_;
  std::vector<uint16_t> readiness_ports_;
  std::vector<std::unique_ptr<harness::Process>> agents_;
  std::vector<std::unique_ptr<harness::Process>> apps_;
  int64_t manifest_version_ = 1;
  int sync_generation_ = 0;
  // Controller mode.
  std::unique_ptr<harness::Process> controller_;
  uint16_t controller_port_ = 0;
  std::string bundle_path_, token_path_, ca_dir_;
};

// GET 127.0.0.1:<port><path> (HTTP/1.0): the body of a 200 answer, else an error.
absl::StatusOr<std::string> httpGet(uint16_t port, const std::string& path);

// A loopback TCP port free right now (for an agent's or a helper server's listener).
uint16_t freeLoopbackPort();

// Paths baked in at build time.
std::string agentBinary();
std::string controllerBinary();
std::string meshAppsScript();
std::string h2ClientScript();

}  // namespace ferry::e2e
