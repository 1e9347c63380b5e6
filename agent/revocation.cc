// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/revocation.h"

#include <vector>

#include "agent/inbound.h"
#include "agent/log.h"
#include "agent/tcp_relay.h"

namespace ferry::agent {

Revocations::~Revocations() {
  if (timer_ != 0) {
    ctx_.loop.cancelTimer(timer_);
  }
}

Revocations& Revocations::of(WorkerContext& ctx) {
  if (!ctx.revocations) {
    ctx.revocations = std::make_unique<Revocations>(ctx);
  }
  return *ctx.revocations;
}

Revocations::Id Revocations::add(const model::Workload& destination, ConnectionAttributes attrs,
                                 std::function<void()> close) {
  if (checked_ == nullptr) {
    checked_ = ctx_.shared.workloads->current();
  }
  Id id = next_id_++;
  entries_.emplace(id, Entry{destination.uid, destination.key, std::move(attrs), std::move(close)});
  arm();
  return id;
}

void Revocations::arm() {
  if (timer_ != 0 || entries_.empty()) {
    return;
  }
  timer_ = ctx_.loop.addTimer(kRecheckInterval, [this] {
    timer_ = 0;
    recheck();
    arm();
  });
}

void Revocations::recheck() {
  auto state = ctx_.shared.workloads->current();
  if (state == checked_) {
    return;
  }
  checked_ = state;
  std::vector<Id> denied;
  for (const auto& [id, e] : entries_) {
    const model::Workload* w = state->workloadByUid(e.uid);
    model::Workload fallback;
    if (w == nullptr) {
      fallback.uid = e.uid;
      fallback.key = e.key;
      w = &fallback;
    }
    Decision d = ctx_.shared.authorizer->authorize(state->snapshot(), *w, e.attrs);
    if (!d.allowed) {
      LOG_INFO("closing ", e.attrs.principal.empty() ? e.attrs.source_ip : e.attrs.principal,
               " -> ", e.key.str(), " port ", e.attrs.destination_port,
               ": no longer allowed: ", d.reason);
      denied.push_back(id);
    }
  }
  // Closing may call remove() (and so touch entries_): take each entry out first.
  for (Id id : denied) {
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      continue;
    }
    std::function<void()> close = std::move(it->second.close);
    entries_.erase(it);
    ctx_.stats.inc(ctx_.stats.policy_revoked);
    close();
  }
}

void relayRevocable(WorkerContext& ctx, int downstream, int upstream,
                    std::atomic<int64_t>* connect_failures, const model::Workload& destination,
                    ConnectionAttributes attrs, std::vector<ConnectionTelemetry> telemetry) {
  Revocations& revocations = Revocations::of(ctx);
  auto id = std::make_shared<Revocations::Id>(0);
  TcpRelay* relay = nullptr;
  relayCounted(
      ctx, downstream, upstream, connect_failures, std::move(telemetry),
      [id, &revocations] { revocations.remove(*id); }, &relay);
  *id = revocations.add(destination, std::move(attrs), [relay] { relay->abort(); });
}

}  // namespace ferry::agent
