// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Upgrades and restarts (agent/drain/handover.h): a starting agent takes every listener over from
// the running one, opens them once it is ready, and the old one then drains in place.
#include <unistd.h>

#include <condition_variable>
#include <memory>
#include <mutex>

#include "agent/agent.h"
#include "agent/proxy/hbone_tunnel.h"
#include "agent/proxy/listeners.h"
#include "hbone/resume.h"
#include "log/log.h"

namespace ferry::agent {

std::vector<WorkerContext*> Agent::workerContexts() const {
  std::vector<WorkerContext*> out;
  for (const auto& c : contexts_) {
    out.push_back(c.get());
  }
  return out;
}

absl::Status Agent::takeOver() {
  auto predecessor = Predecessor::takeOver(config_.handoverSocket(), inherited_);
  if (!predecessor.ok()) {
    // A predecessor that answers badly must not keep the node without an agent: start as after
    // a crash (whatever it still holds makes the binds below fail loudly if it lives on).
    LOG_ERROR("handover: ", predecessor.status().ToString(), "; starting without it");
    inherited_.closeRest();
    return absl::OkStatus();
  }
  predecessor_ = *std::move(predecessor);
  if (predecessor_) {
    LOG_INFO("handover: took ", inherited_.size(),
             " listening sockets from the running agent (pid ", predecessor_->pid(),
             "); accepting once ready");
  }
  return absl::OkStatus();
}

absl::Status Agent::startHandoverServer() {
  HandoverServer::Callbacks callbacks{
      .collect = [this] { return collectListeners(); },
      .onReady = [this](pid_t successor) { onSuccessorReady(successor); },
      .onAbort = [this] { onSuccessorAborted(); },
      .connections = [this] { return stats()["connections_active"]; },
  };
  if (resumes_) {
    callbacks.handStreams = [this] { return handStreamsOver(); };
  }
  auto server = HandoverServer::start(config_.handoverSocket(), std::move(callbacks));
  if (!server.ok()) {
    return server.status();
  }
  handover_ = *std::move(server);
  return absl::OkStatus();
}

void Agent::openGateWhenReady() {
  if (!predecessor_) {
    return;
  }
  gate_ = std::thread([this] {
    // Accept once ready (certificates, configuration), or at once if the predecessor is gone:
    // until then it accepts from the same sockets.
    bool alone = false;
    while (!stopping_.load() && !readiness().ready) {
      if (predecessor_->waitGone(20)) {
        alone = true;
        break;
      }
    }
    if (stopping_.load()) {
      return;
    }
    if (resumes_) {
      // Resumes for streams the predecessor has not handed over yet are told to retry, from
      // the first connection accepted until the predecessor is gone (by then every stream it
      // handed is parked: takeStream parks on the hand-over thread itself).
      shared_.expecting_streams.store(true);
      predecessor_->onGone([this] { shared_.expecting_streams.store(false); });
      predecessor_->onStream([this](HandedStream stream) { takeStream(std::move(stream)); });
    }
    PodListeners::resumeAll(workerContexts());
    predecessor_->ready();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - started_)
                  .count();
    ready_after_ms_ = ms;
    LOG_INFO("handover: accepting ", ms, " ms after start",
             alone ? " (the predecessor exited before this agent was ready)"
                   : "; the predecessor drains in place");
  });
}

std::vector<std::pair<std::string, int>> Agent::collectListeners() {
  std::lock_guard lock(lifecycle_mu_);
  // Probes reaching this agent on the shared readiness socket must not vouch for the successor.
  successor_pending_ = true;
  // No enrollment from here on: the successor replays the journal as it stands.
  if (enroll_server_) {
    kept_enroll_fd_ = enroll_server_->release();
    enroll_server_.reset();
  }
  std::vector<std::pair<std::string, int>> out;
  if (kept_enroll_fd_ >= 0) {
    out.push_back({"enroll", kept_enroll_fd_});
  }
  if (admin_) {
    out.push_back({"admin", admin_->fd()});
  }
  if (readiness_) {
    out.push_back({"readiness", readiness_->fd()});
  }
  if (telemetry_ && telemetry_->metricsFd() >= 0) {
    out.push_back({"metrics", telemetry_->metricsFd()});
  }
  if (registry_) {
    auto pods = registry_->listenerFds();
    out.insert(out.end(), pods.begin(), pods.end());
  }
  return out;
}

void Agent::onSuccessorReady(pid_t successor) {
  std::lock_guard lock(lifecycle_mu_);
  if (registry_) {
    registry_->closeListeners();
  }
  // Every worker has dropped its listeners (posted just before) and announced the drain on its
  // inbound HBONE connections before this agent counts itself handed over: a connection one of
  // them accepted meanwhile is counted, not cut when the agent leaves.
  struct Latch {
    std::mutex mu;
    std::condition_variable cv;
    size_t pending;
  };
  auto latch = std::make_shared<Latch>();  // outlives a wait that gave up
  latch->pending = contexts_.size();
  for (WorkerContext* ctx : workerContexts()) {
    ctx->loop.post([ctx, latch] {
      drainInboundTunnels(*ctx);
      std::lock_guard l(latch->mu);
      --latch->pending;
      latch->cv.notify_all();
    });
  }
  {
    std::unique_lock l(latch->mu);
    if (!latch->cv.wait_for(l, std::chrono::seconds(5), [&] { return latch->pending == 0; })) {
      LOG_WARN("handover: a worker did not answer within 5 s; draining anyway");
    }
  }
  handed_over_ = true;
  admin_.reset();
  readiness_.reset();
  telemetry_->stopMetricsServer();
  if (kept_enroll_fd_ >= 0) {
    ::close(kept_enroll_fd_);
    kept_enroll_fd_ = -1;
  }
  LOG_INFO("handover: agent pid ", successor, " serves the node now; draining ",
           stats()["connections_active"], " connections in place");
}

void Agent::onSuccessorAborted() {
  std::lock_guard lock(lifecycle_mu_);
  successor_pending_ = false;
  if (kept_enroll_fd_ < 0 || !registry_) {
    return;
  }
  auto enroll = enroll::Server::start(config_.enroll_socket, *registry_, kept_enroll_fd_);
  kept_enroll_fd_ = -1;
  if (!enroll.ok()) {
    LOG_ERROR("handover: cannot resume enrollment: ", enroll.status().ToString());
    return;
  }
  enroll_server_ = *std::move(enroll);
}

std::vector<HandedStream> Agent::handStreamsOver() {
  // Each worker detaches its resumable streams: suspended on the wire (RST_STREAM with
  // kSuspendErrorCode, so the peer's agent keeps its side), app socket and state to here.
  struct Collected {
    std::mutex mu;
    std::condition_variable cv;
    size_t pending = 0;
    bool abandoned = false;
    std::vector<HandedStream> streams;
  };
  auto collected = std::make_shared<Collected>();
  collected->pending = contexts_.size();
  ResumeRegistry* resumes = resumes_.get();
  // From now on a stream suspended here waits for the next batch instead of being resumed here.
  shared_.handing_streams_over.store(true);
  for (WorkerContext* ctx : workerContexts()) {
    ctx->loop.post([ctx, collected, resumes] {
      std::vector<HandedStream> mine = takeStreamsForSuccessor(*ctx);
      if (ctx->index == 0) {  // streams parked here for a resume go on waiting at the successor
        for (HandedStream& parked : resumes->handOverParked()) {
          mine.push_back(std::move(parked));
        }
      }
      for (const HandedStream& s : mine) {
        if (s.role == HandedStream::Role::kServer) {
          resumes->handedOver(s);  // a resume still reaching this agent: "retry"
        }
      }
      ctx->stats.inc(ctx->stats.streams_handed_over, static_cast<int64_t>(mine.size()));
      std::lock_guard lock(collected->mu);
      if (collected->abandoned) {
        for (const HandedStream& s : mine) {
          closeWithReset(s.app_fd);
        }
      } else {
        for (HandedStream& s : mine) {
          collected->streams.push_back(std::move(s));
        }
      }
      --collected->pending;
      collected->cv.notify_all();
    });
  }
  std::unique_lock lock(collected->mu);
  if (!collected->cv.wait_for(lock, std::chrono::seconds(5),
                              [&] { return collected->pending == 0; })) {
    LOG_WARN("handover: a worker did not hand its streams over within 5 s; they are reset");
    collected->abandoned = true;
  }
  return std::move(collected->streams);
}

void Agent::takeStream(HandedStream stream) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.resume_window_ms);
  WorkerContext* ctx = contexts_.at(next_stream_worker_.fetch_add(1) % contexts_.size()).get();
  if (stream.role == HandedStream::Role::kServer) {
    // Parked at once, here: the peer's resume may already be on its way.
    const int fd = stream.app_fd;
    if (!resumes_->park(std::move(stream), deadline)) {
      closeWithReset(fd);
    }
    ctx->loop.post([ctx] { ctx->stats.inc(ctx->stats.streams_taken_over); });
    return;
  }
  auto held = std::make_shared<HandedStream>(std::move(stream));
  ctx->loop.post([ctx, held, deadline] {
    ctx->stats.inc(ctx->stats.streams_taken_over);
    resumeClientStream(*ctx, std::move(*held), deadline);  // this side asks the peer
  });
}

// Parked streams whose client side never came back: their app sockets are reset (twice a second,
// on the first worker).
void Agent::expireParkedStreams(WorkerContext& ctx) {
  for (HandedStream& lost : resumes_->expire(std::chrono::steady_clock::now())) {
    LOG_INFO_EVERY_SECOND("a parked stream to ", lost.authority,
                          " was not resumed in time; resetting its app connection");
    ctx.stats.inc(ctx.stats.streams_resume_expired);
    closeWithReset(lost.app_fd);
  }
  ctx.loop.addTimer(std::chrono::milliseconds(500), [this, &ctx] { expireParkedStreams(ctx); });
}

}  // namespace ferry::agent
