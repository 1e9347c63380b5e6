// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/identity/revocation.h"

#include <vector>

#include "agent/log.h"
#include "agent/proxy/inbound.h"
#include "agent/proxy/tcp_relay.h"

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
                                 Close close) {
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
  std::vector<std::pair<Id, std::string>> denied;
  for (const auto& [id, e] : entries_) {
    const model::Workload* w = state->workloadByUid(e.uid);
    model::Workload fallback;
    if (w == nullptr) {
      fallback.uid = e.uid;
      fallback.key = e.key;
      w = &fallback;
    }
    Decision d = state->policies().authorize(*w, e.attrs);
    if (!d.allowed) {
      denied.emplace_back(id, std::move(d.reason));
    }
  }
  // Closing may call remove() (and so touch entries_): take each entry out first.
  for (auto& [id, reason] : denied) {
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      continue;
    }
    Entry e = std::move(it->second);
    entries_.erase(it);
    if (!e.close()) {
      continue;  // it had finished already: nothing was revoked
    }
    ctx_.stats.inc(ctx_.stats.policy_revoked);
    LOG_INFO_EVERY_SECOND(
        "closed ", e.attrs.principal.empty() ? e.attrs.source_ip : e.attrs.principal, " -> ",
        e.key.str(), " port ", e.attrs.destination_port, ": no longer allowed: ", reason);
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
  // The entry is removed when the relay finishes, so a relay reached here is still open.
  *id = revocations.add(destination, std::move(attrs), [relay] {
    relay->abort();
    return true;
  });
}

}  // namespace ferry::agent
