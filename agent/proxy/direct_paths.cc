// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/proxy/direct_paths.h"

#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "agent/proxy/outbound.h"
#include "agent/state/rate_limits.h"
#include "log/log.h"
#include "net/ip.h"
#include "net/sock_diag.h"

namespace ferry::agent {
namespace {

std::string ipOf(const net::Addr16& a) {
  return net::IpAddress::fromAddr16(a).str();
}

}  // namespace

class DirectPaths::EventsHandler : public EventHandler {
 public:
  explicit EventsHandler(bpf::DirectEvents& events) : events_(events) {}
  void onEvents(uint32_t) override { events_.poll(); }

 private:
  bpf::DirectEvents& events_;
};

DirectPaths::DirectPaths(Parts parts) : p_(parts) {}

absl::StatusOr<std::unique_ptr<DirectPaths>> DirectPaths::start(Parts parts) {
  std::unique_ptr<DirectPaths> direct(new DirectPaths(parts));
  DirectPaths* self = direct.get();
  auto events = parts.capture.openDirectEvents(
      [self](const bpf::DirectEvent& event) { self->onEvent(event); });
  if (!events.ok()) {
    return events.status();
  }
  direct->events_ = *std::move(events);
  direct->handler_ = std::make_unique<EventsHandler>(*direct->events_);
  parts.loop.post([self] {
    if (absl::Status s = self->p_.loop.add(self->events_->fd(), EPOLLIN, self->handler_.get());
        !s.ok()) {
      LOG_ERROR("same-node direct path: watching its events failed: ", s.ToString());
    }
    self->arm();
  });
  return direct;
}

void DirectPaths::clearPairs(bpf::Capture& capture) {
  for (const bpf::DirectPair& pair : capture.directPairs()) {
    capture.removeDirectPair(pair);
  }
}

DirectPaths::~DirectPaths() {
  if (timer_ != 0) {
    p_.loop.cancelTimer(timer_);
  }
  if (events_) {
    p_.loop.remove(events_->fd());
  }
}

void DirectPaths::arm() {
  timer_ = p_.loop.addTimer(kRecheckInterval, [this] {
    timer_ = 0;
    recheckPods();
    arm();
  });
}

DirectPaths::Verdict DirectPaths::judge(const bpf::DirectPair& pair, const WorkloadState& state,
                                        const LocalPodTable& pods) const {
  Verdict v;
  const std::string source_ip = ipOf(pair.source);
  const std::string dest_ip = ipOf(pair.destination);
  const LocalPod* source = pods.findByIp(source_ip);
  Destination dest{.ip = dest_ip, .port = pair.port, .workload = state.workloadByIp(dest_ip)};
  if (source == nullptr || pods.findByIp(dest_ip) == nullptr || dest.workload == nullptr ||
      !state.isLocal(*dest.workload) || !dest.workload->mesh_enabled) {
    return v;  // a pod went, or the state does not know it (yet): through the agent
  }
  absl::StatusOr<SocketAddress> to = SocketAddress::parse(dest_ip, pair.port);
  if (!to.ok()) {
    return v;
  }
  SameNodeCall call = sameNodeCall(state, pods, *source, dest, *to, source_ip);
  Decision d = authorizeDelivery(state, call.in, nullptr);
  v.denied = !d.allowed;
  v.direct =
      d.allowed && !call.in.attrs.http &&
      (p_.rate_limits == nullptr || !p_.rate_limits->limits(call.in.pod->info.uid, pair.port));
  v.reports = sameNodeReports(state, *source, call.principal, source_ip, dest, d);
  return v;
}

void DirectPaths::offer(const bpf::DirectPair& pair) {
  std::lock_guard lock(mu_);
  // Judged again under the lock against the state as it is now: a revise() that ran since
  // the connection was admitted has had its say.
  if (!judge(pair, *p_.workloads.current(), *p_.pods.current()).direct) {
    return;
  }
  if (absl::Status s = p_.capture.addDirectPair(pair); !s.ok()) {
    LOG_WARN_EVERY_SECOND("same-node direct path: ", s.ToString());
  }
}

bool DirectPaths::isDirectConnection(const SocketAddress& client,
                                     const SocketAddress& server) const {
  std::optional<bpf::DirectPair> pair = directPairOf(client.ip(), server.ip(), server.port());
  if (!pair) {
    return false;
  }
  for (const bpf::DirectConnection& c : p_.capture.directConnections()) {
    if (c.pair == *pair && c.source_port == client.port()) {
      return true;
    }
  }
  return false;
}

void DirectPaths::revise(const WorkloadState& next) {
  std::lock_guard lock(mu_);
  reviseLocked(next, *p_.pods.current());
}

void DirectPaths::recheckPods() {
  auto pods = p_.pods.current();
  if (pods == checked_pods_) {
    return;
  }
  checked_pods_ = pods;
  std::lock_guard lock(mu_);
  reviseLocked(*p_.workloads.current(), *pods);
}

void DirectPaths::reviseLocked(const WorkloadState& state, const LocalPodTable& pods) {
  std::vector<bpf::DirectConnection> live = p_.capture.directConnections();
  std::set<bpf::DirectPair> pairs;
  for (const bpf::DirectPair& pair : p_.capture.directPairs()) {
    pairs.insert(pair);
  }
  for (const bpf::DirectConnection& c : live) {
    pairs.insert(c.pair);
  }
  std::set<bpf::DirectPair> denied;
  for (const bpf::DirectPair& pair : pairs) {
    Verdict v = judge(pair, state, pods);
    if (!v.direct) {
      p_.capture.removeDirectPair(pair);
    }
    if (v.denied) {
      denied.insert(pair);
    }
  }
  if (denied.empty()) {
    return;
  }
  // Pairs first, then the connections: a connect after the removal is no longer direct, and
  // one that passed connect() before it has its port by the time its SYN could be let in.
  for (const bpf::DirectConnection& c : p_.capture.directConnections()) {
    if (denied.count(c.pair) != 0) {
      cut(c, pods);
    }
  }
}

void DirectPaths::cut(const bpf::DirectConnection& c, const LocalPodTable& pods) {
  auto it = pods.by_ip.find(ipOf(c.pair.source));
  if (it == pods.by_ip.end() || c.source_port == 0) {
    return;  // the client is gone, or has not sent its SYN (sk_lookup no longer lets it in)
  }
  absl::StatusOr<int> diag =
      p_.sockets.socketIn(it->second->netns, AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG);
  if (!diag.ok()) {
    LOG_ERROR("same-node direct path: cannot revoke ", c.pair.toString(), ": ",
              diag.status().ToString());
    return;
  }
  absl::Status s = net::destroyTcpSocket(*diag, {.family = c.family,
                                                 .local = c.pair.source,
                                                 .local_port = c.source_port,
                                                 .remote = c.pair.destination,
                                                 .remote_port = c.pair.port,
                                                 .cookie = c.cookie});
  ::close(*diag);
  if (s.ok()) {
    p_.stats.inc(p_.stats.policy_revoked);
    LOG_INFO("same-node direct connection ", c.pair.toString(), " from port ", c.source_port,
             ": closed, the policy now denies it");
  } else if (!absl::IsNotFound(s)) {
    LOG_ERROR("same-node direct path: cannot revoke ", c.pair.toString(), ": ", s.ToString());
  }
}

const std::vector<ConnectionInfo>& DirectPaths::reportsFor(const bpf::DirectPair& pair) {
  constexpr size_t kMaxCachedPairs = 4096;
  auto state = p_.workloads.current();
  auto pods = p_.pods.current();
  if (state != reports_state_ || pods != reports_pods_ || reports_.size() >= kMaxCachedPairs) {
    reports_.clear();
    reports_state_ = state;
    reports_pods_ = pods;
  }
  auto it = reports_.find(pair);
  if (it == reports_.end()) {
    it = reports_.emplace(pair, judge(pair, *state, *pods).reports).first;
  }
  return it->second;
}

void DirectPaths::onEvent(const bpf::DirectEvent& event) {
  const uint64_t cookie = event.connection.cookie;
  if (event.kind == bpf::DirectEvent::Kind::kOpened) {
    p_.stats.inc(p_.stats.same_node_direct);
    std::vector<ConnectionTelemetry>& opened = open_[cookie];
    for (const ConnectionInfo& info : reportsFor(event.connection.pair)) {
      opened.push_back(p_.telemetry.openConnection(info));
    }
    return;
  }
  std::vector<ConnectionTelemetry> reports;
  if (auto it = open_.find(cookie); it != open_.end()) {
    reports = std::move(it->second);
    open_.erase(it);
  } else {
    // Opened before this agent read the ring (or its open was lost): opened now.
    for (const ConnectionInfo& info : reportsFor(event.connection.pair)) {
      reports.push_back(p_.telemetry.openConnection(info));
    }
  }
  for (ConnectionTelemetry& t : reports) {
    t.close({.bytes_from_source = event.bytes_sent,
             .bytes_to_source = event.bytes_received,
             .connect_failed = event.connect_failed,
             .reset = event.error != 0});
  }
}

}  // namespace ferry::agent
