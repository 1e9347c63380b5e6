// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The node agent, assembled: workers, enrolled pods, state, certificates, capture, admin.
// main.cc builds the parts from the Config and hands them over; tests hand over fakes.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/admin/admin.h"
#include "agent/config.h"
#include "agent/drain/handover.h"
#include "agent/drain/resume_registry.h"
#include "agent/identity/certificates.h"
#include "agent/pods/capture.h"
#include "agent/pods/pod_registry.h"
#include "agent/state/rate_limits.h"
#include "agent/state/route_state.h"
#include "agent/state/state_source.h"
#include "agent/telemetry/telemetry.h"
#include "agent/worker_context.h"
#include "agent/workers.h"
#include "enroll/server.h"

namespace ferry::agent {

struct AgentParts {
  std::unique_ptr<Capture> capture;
  std::unique_ptr<StateSource> state;
  std::unique_ptr<CertificateStore> certs;
  std::shared_ptr<accesslog::Sink> access_log_sink;  // null: stdout
};

class Agent {
 public:
  static absl::StatusOr<std::unique_ptr<Agent>> start(Config config, AgentParts parts);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Drains in place: readiness says "draining"; the listeners stay until a successor takes
  // them over (agent/drain/handover.h), connections in flight are served; returns once both are
  // done or `grace` has passed, then stops the workers. Called by the destructor with no grace.
  void drain(std::chrono::milliseconds grace);
  // Ends a drain in progress (or the next one) at once: the operator's second signal.
  void endDrain() { drain_ended_.store(true, std::memory_order_release); }
  // A successor has taken the listeners over: this agent accepts nothing any more.
  bool handedOver() const { return handed_over_.load(); }

  std::map<std::string, int64_t> stats() const;
  size_t enrolledPods() const { return registry_->size(); }
  uint16_t adminPort() const { return admin_ ? admin_->port() : 0; }
  int metricsPort() const { return telemetry_ ? telemetry_->metricsPort() : 0; }
  Telemetry& telemetry() { return *telemetry_; }
  uint16_t readinessPort() const { return readiness_ ? readiness_->port() : 0; }

  // Ready once the capture is attached, the first configuration is applied and every enrolled
  // pod has a certificate; `waiting` says what is missing.
  struct Readiness {
    bool ready = false;
    std::vector<std::string> waiting;
  };
  Readiness readiness() const;
  const Config& config() const { return config_; }

 private:
  Agent(Config config, AgentParts parts);
  absl::Status init();
  void startDirectPaths();  // the same-node direct path, when on and the kernel can
  std::string statsJson() const;
  std::string podsJson() const;
  // agent_admin.cc: admin routes, readiness server, /config_dump, metric sources.
  absl::Status startAdmin();
  std::string configDumpJson() const;
  void addMetricSources();
  void onStateApplied(int64_t version);
  // agent_handover.cc: taking the listeners over from a running agent, and giving them to the
  // next one.
  absl::Status takeOver();
  absl::Status startHandoverServer();
  void openGateWhenReady();
  std::vector<std::pair<std::string, int>> collectListeners();
  void onSuccessorReady(pid_t successor);
  void onSuccessorAborted();
  // Stream hand-over (docs/upgrades.md): the resumable streams frozen for a successor, and a
  // predecessor's streams taken in.
  std::vector<HandedStream> handStreamsOver();
  void takeStream(HandedStream stream);
  void expireParkedStreams(WorkerContext& ctx);
  std::vector<WorkerContext*> workerContexts() const;

  Config config_;
  AgentParts parts_;
  WorkloadStateHolder workloads_;
  LocalPodsHolder pods_;
  std::unique_ptr<PodSockets> sockets_;  // opened in init(), on the main thread
  Shared shared_;
  std::unique_ptr<RoutingState> routing_;
  std::unique_ptr<RateLimits> rate_limits_ = std::make_unique<RateLimits>();
  std::unique_ptr<Telemetry> telemetry_;
  std::unique_ptr<Workers> workers_;
  std::vector<std::unique_ptr<WorkerContext>> contexts_;
  std::unique_ptr<PodRegistry> registry_;
  std::unique_ptr<enroll::Server> enroll_server_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<AdminServer> readiness_;
  std::atomic<bool> config_applied_{false};
  std::atomic<bool> draining_{false};
  std::atomic<bool> drain_ended_{false};
  std::atomic<bool> tearing_down_{false};  // the end of drain(): workers and pods go
  std::mutex metrics_mu_;                  // metric sources vs drain()
  std::atomic<int64_t> config_applied_unix_ms_{0};
  bool drained_ = false;
  // Hand-over (agent_handover.cc).
  InheritedListeners inherited_;
  std::unique_ptr<Predecessor> predecessor_;
  std::unique_ptr<HandoverServer> handover_;
  std::unique_ptr<ResumeRegistry> resumes_;  // with --stream-resume
  std::unique_ptr<DirectPaths> direct_;      // with --same-node-direct and eBPF capture
  std::mutex direct_mu_;                     // direct_ vs the state thread's revise()
  std::atomic<size_t> next_stream_worker_{0};
  std::thread gate_;  // opens the listeners once ready (with a predecessor)
  std::atomic<bool> stopping_{false};
  std::atomic<bool> handed_over_{false};
  std::atomic<bool> successor_pending_{false};  // a successor took the listeners, not yet ready
  std::atomic<int64_t> ready_after_ms_{-1};     // start to accepting, with a predecessor
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  int kept_enroll_fd_ = -1;  // the enrollment socket while a successor takes over
  std::mutex lifecycle_mu_;  // admin servers, enrollment, registry listeners vs hand-over
};

// Open file descriptors of this process (for the admin endpoint and leak tests).
int openFdCount();

}  // namespace ferry::agent
