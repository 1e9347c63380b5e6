// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/agent.h"

#include <dirent.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "agent/http/h2_upstream.h"
#include "agent/http/http_waiting.h"
#include "agent/http/upstream_pool.h"
#include "agent/identity/certificates.h"
#include "agent/identity/revocation.h"
#include "agent/pods/bpf_capture.h"
#include "agent/proxy/direct_paths.h"
#include "agent/proxy/hbone_pool.h"
#include "agent/proxy/listeners.h"
#include "agent/state/route_state.h"
#include "log/log.h"
#include "net/sock_diag.h"

namespace ferry::agent {

int openFdCount() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    return -1;
  }
  int count = 0;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') {
      ++count;
    }
  }
  ::closedir(dir);
  return count - 1;  // the directory stream's own descriptor
}

WorkerContext::WorkerContext(int i, EventLoop& l, Shared& s)
    : index(i), loop(l), shared(s), rng(std::random_device{}()) {
  pool = std::make_unique<HbonePool>(*this, s.config != nullptr ? s.config->poolSpread() : 1);
  header_waits = std::make_unique<HeaderWaitQueue>(s.http_awaiting_headers, stats);
  if (s.config != nullptr && s.config->fd_reserve) {
    fd_reserve.hold();
  }
}

WorkerContext::~WorkerContext() = default;

absl::StatusOr<std::unique_ptr<Agent>> Agent::start(Config config, AgentParts parts) {
  if (auto s = config.validate(); !s.ok()) {
    return s;
  }
  if (!parts.capture || !parts.state || !parts.certs) {
    return absl::InvalidArgumentError("agent needs a capture, a state source and certificates");
  }
  auto agent = std::unique_ptr<Agent>(new Agent(std::move(config), std::move(parts)));
  if (auto s = agent->init(); !s.ok()) {
    return s;
  }
  return agent;
}

Agent::Agent(Config config, AgentParts parts)
    : config_(std::move(config)), parts_(std::move(parts)) {
  shared_.config = &config_;
  shared_.workloads = &workloads_;
  shared_.capture = parts_.capture.get();
  shared_.pods = &pods_;
  shared_.certs = parts_.certs.get();
  routing_ = std::make_unique<RoutingState>(
      config_.outlier_base_ejection_ms == 0
          ? std::nullopt
          : std::optional(absl::Milliseconds(config_.outlier_base_ejection_ms)));
  shared_.routing = routing_.get();
  shared_.rate_limits = rate_limits_.get();
  if (config_.stream_resume) {
    resumes_ = std::make_unique<ResumeRegistry>();
    shared_.resumes = resumes_.get();
  }
  for (const auto& [cidrs, ranges] : {std::pair{&config_.pod_cidrs, &shared_.pod_ranges},
                                      std::pair{&config_.service_cidrs, &shared_.service_ranges}}) {
    for (const std::string& cidr : *cidrs) {
      if (auto parsed = net::Cidr::parse(cidr); parsed.ok()) {  // validate() refused bad ones
        ranges->push_back(*parsed);
      }
    }
  }
}

absl::Status Agent::init() {
  // Before any thread enters a pod's namespace: this (the main) thread is in the agent's own.
  auto sockets = PodSockets::open(config_.socket_mark);
  if (!sockets.ok()) {
    return sockets.status();
  }
  sockets_ = std::make_unique<PodSockets>(*std::move(sockets));
  shared_.sockets = sockets_.get();
  // Before anything is opened: a running agent's listeners are taken, not fought for.
  if (auto s = takeOver(); !s.ok()) {
    return s;
  }
  TelemetryConfig telemetry_config{
      .metrics_address = config_.metrics_address,
      .metrics_fd = inherited_.takeOne("metrics"),
      .access_log = {.enabled = config_.access_log, .sample_rate = config_.access_log_sample},
      .cluster_name = config_.cluster_name,
      .tracing = {.endpoint = config_.trace_endpoint,
                  .max_queue_spans = config_.trace_queue_spans,
                  .max_batch_spans = config_.trace_batch_spans},
      .trace_sampling = config_.trace_sampling};
  auto telemetry = Telemetry::create(telemetry_config, parts_.access_log_sink);
  if (!telemetry.ok()) {
    return telemetry.status();
  }
  telemetry_ = *std::move(telemetry);
  shared_.telemetry = telemetry_.get();
  std::string node = config_.node_name;
  std::string trust_domain = config_.trust_domain;
  auto s = parts_.state->start([this, node, trust_domain](model::NodeSnapshot snap) {
    if (snap.node.empty()) {
      snap.node = node;
    }
    if (snap.trust_domain.empty()) {
      snap.trust_domain = trust_domain;
    }
    LOG_INFO("state: version ", snap.version, ": ", snap.workloads.size(), " workloads, ",
             snap.services.size(), " services, ", snap.policies.size(), " policies");
    int64_t version = snap.version;
    auto state = std::make_shared<const WorkloadState>(std::move(snap));
    logFailingClosed(workloads_.current()->policies(), state->policies());
    routing_->update(*state);  // before the state is published: a worker seeing it finds its routes
    rate_limits_->update(state->snapshot());
    {
      // Before the workers see it: no direct connect goes ahead on the old answer.
      std::lock_guard lock(direct_mu_);
      if (direct_) {
        direct_->revise(*state);
      }
    }
    workloads_.set(std::move(state));
    onStateApplied(version);
  });
  if (!s.ok()) {
    return s;
  }
  workers_ = std::make_unique<Workers>(config_.workerCount());
  std::vector<WorkerContext*> raw;
  for (int i = 0; i < workers_->size(); ++i) {
    contexts_.push_back(std::make_unique<WorkerContext>(i, workers_->loop(i), shared_));
    contexts_.back()->accepting = predecessor_ == nullptr;
    raw.push_back(contexts_.back().get());
  }
  startDirectPaths();  // before the workers run: they read shared_.direct without a lock
  workers_->start();
  if (resumes_) {
    WorkerContext* first = contexts_.front().get();
    first->loop.post([this, first] { expireParkedStreams(*first); });
  }
  registry_ = std::make_unique<PodRegistry>(EnrollmentTargets{.workers = raw,
                                                              .capture = *parts_.capture,
                                                              .sockets = *sockets_,
                                                              .pods = pods_,
                                                              .workloads = workloads_},
                                            config_.stateFile());
  auto restored = registry_->restore(&inherited_);
  if (!restored.ok()) {
    // A corrupt journal must not keep the node's pods unserved: start empty, CNI re-adds.
    LOG_ERROR("journal ", config_.stateFile(), ": ", restored.status().ToString(),
              "; starting with no pods");
  } else if (*restored > 0) {
    LOG_INFO("journal: restored ", *restored, " pods");
  }
  auto enroll =
      enroll::Server::start(config_.enroll_socket, *registry_, inherited_.takeOne("enroll"));
  if (!enroll.ok()) {
    return enroll.status();
  }
  enroll_server_ = *std::move(enroll);
  if (auto admin = startAdmin(); !admin.ok()) {
    return admin;
  }
  inherited_.closeRest();  // pods that are gone, endpoints turned off
  if (auto s = startHandoverServer(); !s.ok()) {
    return s;
  }
  openGateWhenReady();
  LOG_INFO("ferry-agent for node ", config_.node_name, ": ", workers_->size(),
           " workers, enrollment on ", config_.enroll_socket, ", admin on ", config_.admin_address,
           ":", admin_->port());
  return absl::OkStatus();
}

void Agent::startDirectPaths() {
  auto* bpf = dynamic_cast<BpfCapture*>(parts_.capture.get());
  if (bpf == nullptr) {
    return;
  }
  if (!config_.same_node_direct) {
    DirectPaths::clearPairs(bpf->loader());
    return;
  }
  if (absl::Status s = net::probeSocketDestroy(); !s.ok()) {
    // Without it a revoked policy could not cut a direct connection: the agent carries them.
    LOG_WARN("same-node direct path off: ", s.ToString());
    DirectPaths::clearPairs(bpf->loader());
    return;
  }
  WorkerContext& first = *contexts_.front();
  auto direct = DirectPaths::start({.capture = bpf->loader(),
                                    .loop = first.loop,
                                    .workloads = workloads_,
                                    .pods = pods_,
                                    .rate_limits = rate_limits_.get(),
                                    .telemetry = *telemetry_,
                                    .sockets = *sockets_,
                                    .stats = first.stats});
  if (!direct.ok()) {
    LOG_WARN("same-node direct path off: ", direct.status().ToString());
    DirectPaths::clearPairs(bpf->loader());
    return;
  }
  std::lock_guard lock(direct_mu_);
  direct_ = *std::move(direct);
  shared_.direct = direct_.get();
}

Agent::~Agent() {
  drain(std::chrono::milliseconds(0));
}

void Agent::drain(std::chrono::milliseconds grace) {
  if (drained_) {
    return;
  }
  drained_ = true;
  draining_.store(true, std::memory_order_release);
  // In place: serve (and keep accepting until a successor takes over) for up to `grace`; done
  // early once handed over and idle.
  auto deadline = std::chrono::steady_clock::now() + grace;
  // Streams between a suspension and their resume, or parked for one, are not connections of
  // this agent's any more but must reach a successor (or their end) before it leaves.
  auto idle = [this] {
    return stats()["connections_active"] == 0 && shared_.inbound_tunnels_open.load() == 0 &&
           shared_.streams_in_resume.load() == 0 && (!resumes_ || resumes_->parked() == 0);
  };
  while (workers_ && std::chrono::steady_clock::now() < deadline &&
         !(handed_over_.load() && idle()) && !drain_ended_.load(std::memory_order_acquire)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (grace.count() > 0) {
    LOG_INFO("drain: ", handed_over_.load() ? "handed over" : "no successor took over", ", ",
             stats()["connections_active"], " connections left");
  }
  {
    std::lock_guard lock(metrics_mu_);
    tearing_down_.store(true, std::memory_order_release);
  }
  stopping_ = true;
  if (gate_.joinable()) {
    gate_.join();
  }
  handover_.reset();  // a successor sees the end of the connection: this agent is gone
  std::lock_guard lock(lifecycle_mu_);
  enroll_server_.reset();
  if (registry_) {
    registry_->stopAll();
  }
  // The admin threads read workers' stats: stop them before the workers go.
  admin_.reset();
  readiness_.reset();
  if (workers_) {
    workers_->stop();
  }
  std::unique_ptr<DirectPaths> direct;
  {
    std::lock_guard direct_lock(direct_mu_);
    shared_.direct = nullptr;
    direct = std::move(direct_);
  }
  direct.reset();  // its loop has stopped
  contexts_.clear();
  workers_.reset();
  predecessor_.reset();
}

std::map<std::string, int64_t> Agent::stats() const {
  std::vector<const Stats*> all;
  for (const auto& c : contexts_) {
    all.push_back(&c->stats);
  }
  return sumStats(all);
}

std::string Agent::statsJson() const {
  nlohmann::json out(stats());
  out["open_fds"] = openFdCount();
  out["enrolled_pods"] = registry_ ? registry_->size() : 0;
  out["state_version"] = workloads_.current()->snapshot().version;
  out["draining"] = draining_.load() ? 1 : 0;
  out["handed_over"] = handed_over_.load() ? 1 : 0;
  out["takeover_ready_ms"] = ready_after_ms_.load();
  out["predecessor_connections"] =
      predecessor_ && predecessor_->alive() ? predecessor_->connections() : -1;
  return out.dump() + "\n";
}

std::string Agent::podsJson() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [uid, pod] : pods_.current()->by_uid) {
    out.push_back({{"uid", uid},
                   {"name", pod->info.name},
                   {"namespace", pod->info.ns},
                   {"netns", pod->info.netns},
                   {"ips", pod->info.ips}});
  }
  return out.dump() + "\n";
}

}  // namespace ferry::agent
