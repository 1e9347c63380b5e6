// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/state/workload_state.h"

#include "net/ip.h"

namespace ferry::agent {
namespace {
// Canonical text so "fd00:0::1" and "fd00::1" are one key.
std::string canonical(const std::string& ip) {
  std::optional<net::IpAddress> parsed = net::IpAddress::parse(ip);
  return parsed ? parsed->str() : ip;
}
}  // namespace

WorkloadState::WorkloadState(model::NodeSnapshot snapshot)
    : snapshot_(std::move(snapshot)), policies_(std::make_shared<const PolicyState>(snapshot_)) {
  for (const model::Workload& w : snapshot_.workloads) {
    by_uid_[w.uid] = &w;
    for (const std::string& ip : w.ips) {
      by_ip_[canonical(ip)] = &w;
    }
  }
  // The pod index names the rest of the cluster; a full workload of the same pod wins.
  for (const model::Workload& w : snapshot_.pod_index) {
    by_uid_.emplace(w.uid, &w);
    for (const std::string& ip : w.ips) {
      by_ip_.emplace(canonical(ip), &w);
    }
  }
  for (const model::Service& s : snapshot_.services) {
    for (const std::string& vip : s.vips) {
      by_vip_[canonical(vip)] = &s;
    }
  }
  for (const model::ServiceEndpoints& e : snapshot_.endpoints) {
    endpoints_[e.service] = &e;
  }
}

const model::Workload* WorkloadState::workloadByIp(const std::string& ip) const {
  auto it = by_ip_.find(canonical(ip));
  return it == by_ip_.end() ? nullptr : it->second;
}

const model::Workload* WorkloadState::workloadByUid(const std::string& uid) const {
  auto it = by_uid_.find(uid);
  return it == by_uid_.end() ? nullptr : it->second;
}

std::optional<ServiceTarget> WorkloadState::serviceByVip(const std::string& ip,
                                                         uint16_t port) const {
  auto it = by_vip_.find(canonical(ip));
  if (it == by_vip_.end()) {
    return std::nullopt;
  }
  ServiceTarget t;
  t.service = it->second;
  for (const model::ServicePort& p : t.service->ports) {
    if (p.port == port && (p.protocol.empty() || p.protocol == "TCP")) {
      t.port = &p;
    }
  }
  auto e = endpoints_.find(t.service->key);
  t.endpoints = e == endpoints_.end() ? nullptr : e->second;
  return t;
}

Destination WorkloadState::resolve(const std::string& ip, uint16_t port, std::mt19937& rng) const {
  Destination d;
  auto svc = serviceByVip(ip, port);
  if (!svc) {
    d.ip = canonical(ip);
    d.port = port;
    d.workload = workloadByIp(ip);
    return d;
  }
  d.service = svc->service;
  if (svc->port == nullptr || svc->endpoints == nullptr) {
    return d;  // no such service port, or no endpoints: the caller refuses
  }
  uint16_t target = svc->port->target_port != 0 ? svc->port->target_port : svc->port->port;
  // EndpointSlice ports carry the resolved target port under the service port's name, which
  // is the only way to resolve a named targetPort; fall back to the numeric targetPort.
  auto named = svc->endpoints->named_ports.find(svc->port->name);
  if (named != svc->endpoints->named_ports.end() && named->second != 0) {
    target = named->second;
  } else if (!svc->port->target_port_name.empty()) {
    return d;
  }
  // A VIP of one family is served by endpoints of that family (EndpointSlices are per
  // family); the other family is only a fallback for a single-stack backend.
  const bool want_v6 = ip.find(':') != std::string::npos;
  std::vector<const model::Endpoint*> ready, other_family;
  for (const model::Endpoint& e : svc->endpoints->endpoints) {
    if (e.ready) {
      ((e.ip.find(':') != std::string::npos) == want_v6 ? ready : other_family).push_back(&e);
    }
  }
  if (ready.empty()) {
    ready = other_family;
  }
  if (ready.empty()) {
    return d;
  }
  const model::Endpoint* pick =
      ready[std::uniform_int_distribution<size_t>(0, ready.size() - 1)(rng)];
  d.ip = canonical(pick->ip);
  d.port = target;
  d.workload =
      pick->workload_uid.empty() ? workloadByIp(pick->ip) : workloadByUid(pick->workload_uid);
  if (d.workload == nullptr) {
    d.workload = workloadByIp(pick->ip);
  }
  return d;
}

}  // namespace ferry::agent
